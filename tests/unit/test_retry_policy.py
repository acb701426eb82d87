"""The retry policy's numbers are defined once (core.retry) and the docs say the same."""

from __future__ import annotations

import re

import pytest

from core.retry import POLICIES, Backoff
from core.settings import PROJECT_ROOT, Settings

ROW = re.compile(r"^\| ([A-Za-z -]+) \| (.+) \| ([\d.]+) s \| ([\d.]+) s \|$", re.M)


def documented() -> dict[str, tuple[str, float, float]]:
    text = (PROJECT_ROOT / "docs" / "architecture.md").read_text()
    return {name: (layer, float(first), float(longest)) for name, layer, first, longest in ROW.findall(text)}


@pytest.mark.parametrize("policy", POLICIES, ids=[p.name for p in POLICIES])
def test_the_docs_table_matches_the_policy(policy: Backoff):
    assert documented().get(policy.name) == (policy.layer, policy.first_s, policy.max_s)


def test_the_docs_name_no_policy_the_code_lacks():
    assert set(documented()) == {p.name for p in POLICIES}


def test_a_backoff_doubles_up_to_its_cap_and_a_setting_may_lower_it():
    policy = Backoff("t", 1.0, 10.0, "t")
    delays = [policy.first_s]
    for _ in range(5):
        delays.append(policy.next(delays[-1]))
    assert delays == [1, 2, 4, 8, 10, 10]
    assert policy.next(4, max_s=5) == 5


def test_the_watchdogs_default_cap_is_the_policys(tmp_path):
    from core.retry import LOCAL_SERVICE

    assert Settings(runtime_dir=tmp_path).watchdog_max_backoff_s == LOCAL_SERVICE.max_s
