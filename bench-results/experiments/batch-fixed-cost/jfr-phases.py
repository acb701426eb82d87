"""The samples of the threads matching REGEX, by phase: `jfr-phases.py FILE.txt REGEX`, where FILE.txt is
`jfr print --stack-depth 80 --events jdk.ExecutionSample rec.jfr`. A sample counts for the first phase whose
pattern matches anywhere in its stack."""

import collections
import re
import sys
from collections.abc import Iterator

PHASES = [
    ("codegen", r"WholeStageCodegenExec\.doCodeGen|CodegenSupport\.produce|CodeFormatter|stripMargin"),
    ("janino/compile", r"CodeGenerator\$\.compile|janino|codehaus"),
    ("plan strings", r"explainString|simpleString|treeString|SparkPlanInfo|verboseString|ExplainUtils|TreeString"),
    ("serialize", r"ObjectOutputStream|JavaSerializer|ClosureCleaner"),
    ("optimizer", r"Optimizer|RuleExecutor"),
    ("analyzer", r"Analyzer|CheckAnalysis"),
    ("physical planning", r"SparkPlanner|QueryPlanner|prepareForExecution|QueryExecution\.executedPlan"),
    ("arrow collect", r"collectAsArrowToPython|ArrowConverters"),
    ("checkpoint files", r"HDFSMetadataLog|OffsetSeqLog|CommitLog|CheckpointFileManager"),
    ("kafka offsets", r"KafkaOffsetReader|KafkaMicroBatchStream\.latestOffset|KafkaAdmin"),
    ("py4j", r"py4j"),
]


def samples(path: str) -> Iterator[tuple[str, str]]:
    """(thread, stack text) per sample."""
    thread, frames, in_stack = None, [], False
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines:
        s = line.strip()
        if s.startswith("jdk.ExecutionSample"):
            if thread is not None:
                yield thread, "\n".join(frames)
            thread, frames, in_stack = None, [], False
        elif s.startswith("sampledThread"):
            thread = s
        elif s.startswith("stackTrace = ["):
            in_stack = True
        elif in_stack and s == "]":
            in_stack = False
        elif in_stack:
            frames.append(s)
    if thread is not None:
        yield thread, "\n".join(frames)


def main() -> None:
    path, wanted = sys.argv[1], re.compile(sys.argv[2])
    counts: collections.Counter[str] = collections.Counter()
    for thread, stack in samples(path):
        if wanted.search(thread):
            counts[next((name for name, pattern in PHASES if re.search(pattern, stack)), "other")] += 1
    n = sum(counts.values())
    print(f"{n} samples")
    for name, c in counts.most_common():
        print(f"{c / n * 100:5.1f}% {name}")


if __name__ == "__main__":
    main()
