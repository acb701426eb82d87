set -x
S=job-sigkill,standby-job-sigkill
for i in 1 2; do
  cd /work/main && .venv/bin/shopstream chaos --scenarios $S --runs 1 --out /tmp/prof/chaos/new$i > /tmp/prof/chaos-new$i.log 2>&1
  cd /tmp/base && /work/main/.venv/bin/python -m infra chaos --scenarios $S --runs 1 --out /tmp/prof/chaos/base$i > /tmp/prof/chaos-base$i.log 2>&1
done
