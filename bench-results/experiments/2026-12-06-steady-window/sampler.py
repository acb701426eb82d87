"""Every 30 s: CPU % of one core for the job JVM (all, compiler threads, executor tasks, stream thread), the job's
Python processes, and the producer. Usage: sampler.py SECONDS."""
import os, sys, time, subprocess
HZ = os.sysconf("SC_CLK_TCK")
def pids(pattern):
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]
def proc_ticks(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except OSError:
        return 0
def threads(pid):
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tids:
        try:
            comm = open(f"/proc/{pid}/task/{t}/comm").read().strip()
            f = open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(t)] = (comm, int(f[11]) + int(f[12]))
    return out
def snap():
    jvm = (pids("temurin-25.*pyspark") or [0])[0]
    th = threads(jvm) if jvm else {}
    cat = {"jvm": 0, "jit": 0, "exec": 0, "stream": 0}
    for comm, t in th.values():
        cat["jvm"] += t
        if "CompilerThre" in comm: cat["jit"] += t
        elif comm.startswith("Executor task"): cat["exec"] += t
        elif comm.startswith("stream executio"): cat["stream"] += t
    cat["py"] = sum(proc_ticks(p) for p in pids("python -m infra stream"))
    cat["prod"] = sum(proc_ticks(p) for p in pids("bench e2e --systems"))
    return jvm, cat
end = time.time() + float(sys.argv[1])
t0 = time.time()
prev = None
while time.time() < end:
    jvm, c = snap()
    now = time.time()
    if prev and prev[1] == jvm and jvm:
        dt = now - prev[0]
        print(f"{now - t0:6.0f}s " + " ".join(f"{k}={100 * (c[k] - prev[2][k]) / HZ / dt:5.1f}" for k in c), flush=True)
    prev = (now, jvm, c)
    time.sleep(30)
