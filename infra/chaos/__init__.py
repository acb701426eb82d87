"""`shopstream chaos`: the fault matrix, injected for real against the live pipeline.

- ``faults``: the injections (kills, stops, a blackholing proxy, a full file system);
- ``harness``: one run = produce, inject, watch the job's own signals, clear, drain, account;
- ``options``: the command's options model.
"""
