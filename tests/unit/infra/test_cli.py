"""The CLI answers bad input with one clear line and a non-zero exit, never a traceback."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def shopstream(*args, env=None):
    import os

    return subprocess.run(
        [sys.executable, "-m", "infra", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_help_lists_the_commands_and_their_environment_variables():
    out = shopstream("--help")
    assert out.returncode == 0
    for word in ("up", "down", "status", "logs", "kafka", "SHOPSTREAM_KAFKA_PORT"):
        assert word in out.stdout


def test_an_unknown_flag_is_a_usage_error():
    out = shopstream("status", "--colour")
    assert out.returncode == 2
    assert "No such option" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_invalid_setting_names_the_flag_and_variable():
    out = shopstream("status", env={"SHOPSTREAM_POSTGRES_PORT": "70000"})
    assert out.returncode == 2
    assert "invalid setting postgres_port" in out.stderr
    assert "SHOPSTREAM_POSTGRES_PORT" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_resume_without_a_journal_says_what_to_give(tmp_path):
    missing = shopstream("produce", "--resume", str(tmp_path / "m.json"))
    (tmp_path / "other.json").write_text("{}")
    foreign = shopstream("produce", "--resume", str(tmp_path / "other.json"))
    for out, says in ((missing, "does not exist"), (foreign, "holds no producer journal")):
        assert out.returncode == 2
        assert says in out.stderr and "--manifest" in out.stderr
        assert "Traceback" not in out.stderr


def test_a_kafka_cluster_of_another_size_than_formatted_is_refused_with_the_fix(tmp_path):
    data = tmp_path / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("cluster.id=abc\nnode.id=1\n")  # a one-node install
    out = shopstream(
        "up", "--brokers", "3", env={"SHOPSTREAM_RUNTIME_DIR": str(tmp_path), "SHOPSTREAM_WATCHDOG": "false"}
    )
    assert out.returncode == 2, out.stderr
    assert "formatted as a 1-node cluster, not 3: run `shopstream up --brokers 1`" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    too_many = shopstream("up", "--brokers", "9")
    assert too_many.returncode == 2 and "--brokers" in too_many.stderr


def test_an_unknown_kafka_tool_is_named():
    out = shopstream("kafka", "reassign-everything")
    assert out.returncode == 2
    assert "unknown Kafka tool" in out.stderr


# --- one configuration path -----------------------------------------------------------

import json  # noqa: E402

import pytest  # noqa: E402
import typer  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from core.settings import Settings  # noqa: E402
from infra.cli import app, main  # noqa: E402
from infra.cli.options import Options, flag_name, variable  # noqa: E402
from producers.options import ProduceOptions  # noqa: E402
from streaming.options import StreamOptions  # noqa: E402


def click_commands():
    """(path, click command) of every command, groups walked."""

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, cmd

    return list(walk(typer.main.get_command(app), ()))


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


#: Fields `run` sets itself, or has no use for (it is bounded, and loads the dimensions itself).
RUN_SETS_ITSELF = (
    "count",
    "resume",
    "forever",
    "load_dimensions",
    "ready_file",
    "stop_when_idle_s",
    "from_group_offsets",
)


def test_every_stream_and_produce_field_is_a_flag_of_its_commands_with_its_variable():
    from infra.cli.pipeline import REPLAY_ONLY

    commands = dict(click_commands())
    for model, group, names in (
        (StreamOptions, "stream", ("stream", "run")),
        (ProduceOptions, "produce", ("produce", "run")),
    ):
        for name in names:
            envvars = {opt: p.envvar for p in commands[(name,)].params for opt in p.opts}
            for path, info in Options("options", model, group).fields():
                flag = f"--{flag_name(path[-1], info)}"
                if path[-1] in REPLAY_ONLY or (name == "run" and path[-1] in RUN_SETS_ITSELF):
                    assert flag not in envvars  # `replay` and `run` set these themselves (or have no use for them)
                    continue
                assert flag in envvars, f"`{name}`: {path} has no flag"
                assert envvars[flag] == variable(group, flag[2:])


def test_the_global_flags_are_settings_fields_with_their_variables():
    for param in typer.main.get_command(app).params:
        if param.name in ("verbose", "help"):
            continue
        assert param.name in Settings.model_fields, param.name
        assert param.envvar == f"SHOPSTREAM_{param.name.upper()}"


def non_default_environment(model: type[BaseModel], group: str) -> dict[str, str]:
    """A variable for every flag of ``model``, each set to a valid value unlike its default."""
    special = {
        "pipeline": "every-variable",
        "driver_memory": "1g",
        "executor_memory": "1g",
        "master": "local[1]",
        "steps": "100:1,200:2",
    }
    env = {}
    for path, info in Options("options", model, group).fields():
        default = info.get_default(call_default_factory=True)
        if info.annotation is bool:
            value = "false" if default else "true"
        elif path[-1] in special:
            value = special[path[-1]]
        elif info.annotation in (int, int | None):
            value = str((default or 0) + 3)
        elif info.annotation in (float, float | None):
            value = "0.125"
        else:  # paths and free text
            value = f"/tmp/every-variable-{path[-1]}"
        env[variable(group, flag_name(path[-1], info))] = value
    return env


def test_every_option_set_through_its_variable_reaches_the_child_job(tmp_path):
    """Variables -> `run`'s models -> the stream job's child process, whole (--dry-run prints the models)."""
    from infra.orchestration.processes import StreamProcess

    env = {**non_default_environment(ProduceOptions, "produce"), **non_default_environment(StreamOptions, "stream")}
    parent = shopstream("run", "--dry-run", env={**env, "SHOPSTREAM_RUNTIME_DIR": str(tmp_path)})
    assert parent.returncode == 0, parent.stderr
    seen = json.loads(parent.stdout)
    stream = StreamOptions(**seen["stream_options"])
    produce = ProduceOptions(**seen["produce_options"])
    from infra.cli.pipeline import REPLAY_ONLY

    unset_by_run = {*RUN_SETS_ITSELF, *REPLAY_ONLY}
    defaults = {**StreamOptions().model_dump(), **ProduceOptions(count=1).model_dump()}
    for options in (stream, produce):
        for name in type(options).model_fields:
            if name not in unset_by_run:
                assert getattr(options, name) != defaults[name], f"{name} did not arrive from its variable"
    assert produce.faults.schema_ == produce.faults.business_rules == 0.125

    settings = Settings(runtime_dir=tmp_path, kafka_port=19092, writer_password="pass word'")
    process = StreamProcess(settings, stream)
    child = subprocess.run(
        [*process.argv(), "--dry-run"], capture_output=True, text=True, timeout=60, env=process.env()
    )
    assert child.returncode == 0, child.stderr
    assert StreamOptions(**json.loads(child.stdout)["options"]) == process.options
    assert process.options.trigger_s == 0.125 and process.options.ready_file is not None


def test_no_command_answers_a_bad_value_with_a_traceback(capsys):
    """Every command: an unknown flag, and every numeric flag given text; with --dry-run (so
    nothing runs when a value is accepted) every numeric flag given a negative value too.
    A rejection is one line on stderr and exit 2."""
    rejected = 0
    for path, command in click_commands():
        names = {opt for p in command.params for opt in p.opts}
        dry = ["--dry-run"] if "--dry-run" in names else []
        # `kafka` hands every flag to Kafka's own tool (checked by test_an_unknown_kafka_tool_is_named)
        cases = [] if path == ("kafka",) else [["--no-such-flag"]]
        for param in command.params:
            if param.bare_type() in ("int", "float") and param.opts[0].startswith("--"):
                cases.append([param.opts[0], "not-a-number"])
                if dry:
                    cases.append([param.opts[0], "-5", *dry])
        for case in cases:
            code, out, err = run_cli(capsys, *path, *case)
            assert "Traceback" not in err + out, (path, case)
            if code == 0 and case[-1] == "--dry-run":
                continue  # a negative value that flag accepts (a seed); nothing ran
            assert code == 2, (path, case, out, err)
            assert len(err.strip().splitlines()) == 1, (path, case, err)
            rejected += 1
    assert rejected > 60
    for argv in (
        ["report", "--minutes", "-5"],
        ["stream", "--trigger", "-1"],
        ["bench", "e2e", "--levels", "abc"],
        ["produce", "--steps", "5000"],
        ["produce", "--steps", "0:60"],
        ["bench", "step", "--steps", "x:1"],
    ):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and err.startswith("error: invalid --"), (argv, err)


def test_a_replay_from_the_future_or_backwards_is_one_line_and_touches_nothing():
    """Checked before anything connects: no service is needed to refuse."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    later = (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    earlier = (now - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    before = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    for args, says in (
        (["--from", later], "is in the future"),
        (["--from", before, "--to", earlier], "is not after --from"),
        (["--from", "yesterday"], "is not a time"),
    ):
        out = shopstream(
            "replay", *args, env={"SHOPSTREAM_POSTGRES_PORT": "1", "SHOPSTREAM_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
        )
        assert out.returncode == 2, out
        assert says in out.stderr and out.stderr.strip().count("\n") == 0, out.stderr
        assert "Traceback" not in out.stderr


def test_a_replay_with_kafka_away_is_one_line_naming_it_and_the_fix():
    """Both forms: Kafka's consumer-groups tool alone did not fail the live form, and the bounded one raised
    confluent's KafkaException as a traceback."""
    import datetime as dt

    from infra.chaos.faults import free_port

    now = dt.datetime.now(dt.UTC)
    since, until = ((now - dt.timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M") for m in (60, 2))
    nowhere = f"127.0.0.1:{free_port()}"
    forms = (["--from", since], ["--from", since, "--to", until])
    ports = [str(free_port()) for _ in forms]
    with ThreadPoolExecutor(len(forms)) as pool:  # side by side: each waits out librdkafka's 10 s probe
        outs = list(
            pool.map(
                lambda args, port: shopstream(
                    "replay",
                    *args,
                    env={"SHOPSTREAM_BOOTSTRAP_SERVERS": nowhere, "SHOPSTREAM_STREAM_METRICS_PORT": port},
                ),
                forms,
                ports,
            )
        )
    for out in outs:
        assert out.returncode == 2, out
        assert f"Kafka at {nowhere} is not reachable" in out.stderr and "shopstream up" in out.stderr, out.stderr
        assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr, out.stderr


def test_a_redrive_of_an_unknown_rule_or_category_is_one_line_and_sends_nothing():
    for args, says in (
        (["--rule", "too_cheap"], "unknown rule 'too_cheap'"),
        (["--category", "vibes"], "unknown category 'vibes'"),
        (["--since", "2999-01-01"], "is in the future"),
    ):
        out = shopstream("dead-letter", "redrive", *args, env={"SHOPSTREAM_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
        assert out.returncode == 2, out
        assert says in out.stderr and out.stderr.strip().count("\n") == 0, out.stderr
        assert "Traceback" not in out.stderr
