#!/bin/bash
cd /work/main
for spec in "k17-1 /usr/lib/jvm/java-17-openjdk-amd64" "k25-1 /usr/lib/jvm/temurin-25-jdk-amd64" "k17-2 /usr/lib/jvm/java-17-openjdk-amd64" "k25-2 /usr/lib/jvm/temurin-25-jdk-amd64"; do
  read name jh <<< "$spec"
  .venv/bin/shopstream down > /dev/null 2>&1
  JAVA_HOME=$jh .venv/bin/shopstream up > /tmp/r/$name.up.log 2>&1
  echo "$(date +%T) start $name kafka java: $(readlink -f /proc/$(pgrep -f kafka.Kafka | head -1)/exe)" >> /tmp/r/seq.log
  .venv/bin/python -m infra bench e2e --systems shopstream --levels 10000 --duration 60 --warmup 20 --no-search --out /tmp/r/$name > /tmp/r/$name.log 2>&1
  echo "$(date +%T) end $name rc=$?" >> /tmp/r/seq.log
done
.venv/bin/shopstream down > /dev/null 2>&1
