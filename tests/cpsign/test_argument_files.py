"""CPSign @-files: every value is one argument, and nothing smuggles in more (issue #22).

The round trips parse the written files with the stage runtime's own @-file reader
(``stages/runtime/.../ArgFiles.java``: picocli's ``StreamTokenizer`` set-up, which the CPSign
CLI uses), compiled here on its own; without a JDK they are skipped.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import pytest

from cpsign_airflow.cpsign import load_example, validate_configuration
from cpsign_airflow.cpsign.arguments import (
    flag_lines,
    precompute_arguments,
    quote_argument,
    train_parameter_files,
    with_tuned_scorer,
)
from cpsign_airflow.cpsign.configuration import ConfigurationError

RUNTIME_SRC = (
    Path(__file__).resolve().parents[2]
    / "cpsign_airflow/stages/runtime/src/main/java/org/cpsignairflow"
)
HARNESS = """
package org.cpsignairflow;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

public final class ArgFilesHarness {
    public static void main(String[] args) throws Exception {
        StringBuilder out = new StringBuilder();
        for (String token : ArgFiles.expand(Arrays.asList(args))) {
            for (byte b : token.getBytes(StandardCharsets.UTF_8)) {
                out.append(String.format("%02x", b));
            }
            out.append('\\n');
        }
        System.out.print(out);
    }
}
"""
#: Values that need quoting (blanks, both quotes, '#', backslashes) or look like they might.
AWKWARD = [
    "plain",
    "two words",
    "  leading and trailing  ",
    'double " quote',
    "single ' quote",
    "\"both\" and 'kinds'",
    "back\\slash",
    "trailing backslash\\",
    "\\\\two\\\\",
    "\\n is not a line break",
    "# not a comment",
    "a#b",
    "",
    "x@y",
    "-5",
    "k=v:w,z;(a)|b&c$d`e`",
    "smörgåsbord ☃ 日本",
]


@pytest.fixture(scope="module")
def parse(tmp_path_factory):
    """``parse(text) -> tokens``: the runtime's @-file reader on ``text``."""
    if not (shutil.which("javac") and shutil.which("java")):
        pytest.skip("needs a JDK (javac, java) to run the runtime's @-file reader")
    build = tmp_path_factory.mktemp("argfiles")
    (build / "ArgFilesHarness.java").write_text(HARNESS, encoding="utf-8")
    subprocess.run(
        ["javac", "-encoding", "UTF-8", "-d", str(build / "classes"),
         str(RUNTIME_SRC / "ArgFiles.java"), str(build / "ArgFilesHarness.java")],
        check=True, capture_output=True,
    )  # fmt: skip
    counter = iter(range(1_000_000))

    def run(text: str, *extra: str) -> list[str]:
        path = build / f"args-{next(counter)}.txt"
        path.write_bytes(text.encode("utf-8"))
        out = subprocess.run(
            ["java", "-cp", str(build / "classes"), "org.cpsignairflow.ArgFilesHarness",
             f"@{path}", *extra],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return [bytes.fromhex(line).decode("utf-8") for line in out.stdout.split("\n")[:-1]]

    return run


def test_the_runtime_reader_follows_picocli_rules(parse):
    text = "--a 'one two' \"three\\tfour\" # a comment\n--b five#six\n"
    assert parse(text) == ["--a", "one two", "three\tfour", "--b", "five"]


def test_quoted_values_survive_as_one_argument_each(parse):
    quoted = [quote_argument(value) for value in AWKWARD]
    assert parse("\n".join(quoted) + "\n") == AWKWARD
    assert parse(" ".join(quoted)) == AWKWARD
    assert parse("--flag " + " ".join(quoted) + " # trailing comment\n--next\n") == [
        "--flag",
        *AWKWARD,
        "--next",
    ]


def test_configuration_flags_in_the_written_files_are_one_argument_each(parse):
    config = load_example("herg-sectioned")
    config["train"]["flags"] = {"note": "a b # 'c' \"d\" \\e", "tags": ["x y", 'q"uote', "-1"]}
    config["cpsign"]["flags"] = {"time": True, "percentiles": -2.5}
    config = validate_configuration(config)
    tokens = parse(train_parameter_files(config)["params-1.txt"])
    assert tokens[tokens.index("--note") + 1] == "a b # 'c' \"d\" \\e"
    assert tokens[tokens.index("--tags") + 1 : tokens.index("--tags") + 4] == [
        "x y",
        'q"uote',
        "-1",
    ]
    assert tokens[tokens.index("--percentiles") + 1] == "-2.5"
    assert tokens.count("--model-out") == 1 and "--time" in tokens
    precompute = parse(precompute_arguments(config))
    assert precompute[precompute.index("--descriptors") + 1] == (
        "signatures:startHeight=1:endHeight=3"
    )
    tuned = parse(with_tuned_scorer(train_parameter_files(config)["params-1.txt"], {"cost": 4}))
    assert tuned[tuned.index("--scorer") + 1] == "C_SVC:cost=4:gamma=0.0078125"


def test_why_quoting_is_not_enough_for_newlines_and_at_signs(parse, tmp_path):
    """What validation refuses: a line break ends even a quoted value, '@' reads a file."""
    secret = tmp_path / "license"
    secret.write_text("LICENSE-KEY")
    smuggled = '--verbose "x\n--model-out e.jar"\n'
    # the closing quote opens another quoted token, which the line break ends again
    assert parse(smuggled) == ["--verbose", "x", "--model-out", "e.jar", ""]
    assert parse(f'--verbose "@{secret}"\n') == ["--verbose", "LICENSE-KEY"]


@pytest.mark.parametrize(
    "value",
    ["x\n--model-out e.jar", "x\r--model-out e.jar", "nul\x00", "esc\x1b[0m", "@/etc/license"],
)
def test_quote_argument_refuses_what_quoting_cannot_keep_literal(value):
    with pytest.raises(ValueError, match="CPSign argument"):
        quote_argument(value)
    with pytest.raises(ValueError, match="--verbose"):
        flag_lines({"verbose": value})
    with pytest.raises(ValueError, match="--tags"):
        flag_lines({"tags": ["fine", value]})


def test_flag_lines_refuse_option_like_values_and_bad_names():
    with pytest.raises(ValueError, match="must not start with '-'"):
        flag_lines({"time": "--model-out=e.jar"})
    with pytest.raises(ValueError, match="must not start with '-'"):
        flag_lines({"time": ["--model-out", "e.jar"]})
    for name in ("x y", "x\n", "@x", "Time", "-x"):
        with pytest.raises(ValueError, match="flag name"):
            flag_lines({name: True})
    assert flag_lines({"offset": "-1.5", "n": -3}) == ["--n -3", "--offset -1.5"]


# ----------------------------------------------------------------- validate_configuration


def _problems(config) -> list[str]:
    with pytest.raises(ConfigurationError) as info:
        validate_configuration(config)
    return info.value.problems


def _with(section: str, key: str, value, base: str = "herg-sectioned") -> dict:
    config = copy.deepcopy(load_example(base))
    config.setdefault(section, {})[key] = value
    return config


@pytest.mark.parametrize("section", ["precompute", "crossvalidate", "train", "cpsign"])
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("x\n--model-out e.jar", "line breaks"),
        ("x\r--model-out e.jar", "line breaks"),
        ("x\x00y", "control characters"),
        ("x\u2028y", "control characters"),
        ("@/run/secrets/cpsign-license/license", "must not start with '@'"),
        ("--model-out=e.jar", "must not start with '-'"),
    ],
)
def test_flag_values_that_would_smuggle_arguments_are_refused(section, value, reason):
    problems = _problems(_with(section, "flags", {"verbose": value}))
    assert any(p.startswith(f"{section}.flags.verbose: ") and reason in p for p in problems), (
        problems
    )
    problems = _problems(_with(section, "flags", {"tags": ["fine", value]}))
    assert any(p.startswith(f"{section}.flags.tags[1]: ") and reason in p for p in problems)


@pytest.mark.parametrize("name", ["verbose\n", "@license", "x\ry", "verbose\n--model-out"])
def test_flag_names_that_would_smuggle_arguments_are_refused(name):
    problems = _problems(_with("train", "flags", {name: True}))
    assert any(p.startswith("train.flags") and repr(name) in p for p in problems), problems


def test_ordinary_awkward_flag_values_are_accepted():
    config = _with("train", "flags", {"note": "a b # 'c' \"d\" \\e x@y", "offset": "-0.5", "n": -3})
    config["train"]["flags"]["tags"] = ["two words", "-1e-3", 7]
    assert validate_configuration(config)["train"]["flags"]["offset"] == "-0.5"


@pytest.mark.parametrize(
    ("section", "key", "value", "where"),
    [
        ("precompute", "descriptors", "@/etc/license", "precompute.descriptors"),
        ("precompute", "descriptors", "signatures\n--model-out x", "precompute.descriptors"),
        ("precompute", "labels", ["blocker", "@x"], "precompute.labels[1]"),
        ("precompute", "labels", ["-x", "blocker"], "precompute.labels[0]"),
        ("precompute", "endpoint", "@herg_class", "precompute.endpoint"),
        ("train", "nonconf-measure", "Normalized\n--seed 1", "train.nonconf-measure"),
        ("train", "nonconf-measure", "--seed=1", "train.nonconf-measure"),
    ],
)
def test_other_free_text_in_argument_files_is_checked(section, key, value, where):
    problems = _problems(_with(section, key, value))
    assert any(p.startswith(f"{where}: must not") for p in problems), problems


def test_the_default_endpoint_column_is_checked():
    config = load_example("logd-flat")
    config["query"]["smi_columns"] = ["canonical_smiles", "@acd_logd"]
    problems = _problems(config)
    assert any(p.startswith("preprocessing.query.smi_columns[1]: must not") for p in problems)
    config["query"]["smi_columns"] = ["canonical\nsmiles", "acd_logd"]
    problems = _problems(config)
    assert any(p.startswith("preprocessing.query.smi_columns[0]: must not") for p in problems)
