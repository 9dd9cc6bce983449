"""The keras-inspect command: summary of files and examples, plugins, one-line errors, progress."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import runpy
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import keras
import pytest

import keras_inspect as ki
from keras_inspect.cli import console
from keras_inspect.cli import main as cli
from keras_inspect.cli.loading import ModelLoadError, build_example, load_model
from keras_inspect.views.summary import format_shapes


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("keras-inspect: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    plain = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(3, 3, name="conv"),
            keras.layers.GlobalMaxPooling2D(name="pool"),
            keras.layers.Dense(2, name="logits"),
        ],
        name="small",
    )
    lam = keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2.0, name="double"),
         keras.layers.Dense(2, name="out")],
        name="with_lambda",
    )
    paths = {"plain": root / "small.keras", "lambda": root / "lambda.keras"}
    plain.save(paths["plain"])
    lam.save(paths["lambda"])
    data = paths["plain"].read_bytes()
    paths["truncated"] = root / "truncated.keras"
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["garbage"] = root / "garbage.keras"
    paths["garbage"].write_bytes(b"this is not a zip archive")
    paths["corrupt"] = root / "corrupt.keras"
    # Flip bytes inside the stored weights: the zip directory survives, the checksum does not.
    with zipfile.ZipFile(paths["plain"]) as archive:
        info = archive.getinfo("model.weights.h5")
        offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 64
    corrupted = bytearray(data)
    corrupted[offset : offset + 16] = bytes(255 - b for b in corrupted[offset : offset + 16])
    paths["corrupt"].write_bytes(bytes(corrupted))
    paths["not_keras"] = root / "model.h5"
    paths["not_keras"].write_bytes(b"x")
    paths["no_config"] = root / "empty.keras"
    with zipfile.ZipFile(paths["no_config"], "w") as archive:
        archive.writestr("readme.txt", "hello")
    return paths


def test_summary_of_a_keras_file(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    code, out, err = run(capsys, "summary", str(files["plain"]))
    assert code == 0, err
    for name in ("conv", "pool", "logits"):
        assert name in out
    assert "output of 'logits'" in out and "input of 'pool'" in out
    model = load_model(files["plain"])
    assert "Traceback" not in err
    assert format_shapes((tuple(model.get_layer("conv").output.shape),)) in out


def test_json_summary_is_the_library_summary(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, out, _ = run(capsys, "summary", str(files["plain"]), "--json")
    assert code == 0
    data = json.loads(out)
    expected = ki.summary(load_model(files["plain"])).to_dict()
    assert data == expected
    assert data["defaults"]["logits"] == ["logits"]


def test_role_filter(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    code, out, _ = run(capsys, "summary", str(files["plain"]), "--json", "--role", "pooling")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert [row["path"] for row in rows] == [["pool"]]


def test_unknown_role_is_one_line_with_close_matches(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, _, err = run(capsys, "summary", str(files["plain"]), "--role", "poolin")
    assert code == 1
    assert_one_line_error(err, "'poolin'", "'pooling'")


def test_builtin_example(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras_inspect.cli.loading as loading

    built: list[keras.Model] = []

    def keep(*args: object, **kwargs: object) -> keras.Model:
        built.append(build_example(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(loading, "build_example", keep)
    code, out, err = run(capsys, "summary", "mobilenetv2", "--image-size", "32", "--json")
    assert code == 0, err
    data = json.loads(out)
    (model,) = built
    assert model.name.startswith("mobilenetv2") and tuple(model.input.shape) == (None, 32, 32, 3)
    assert len(data["rows"]) == len(ki.walk(model))
    # Layer names get numbered per process, so compare positions in graph order instead.
    layers = [entry.layer for entry in ki.walk(model)]
    for key, layer in (("logits", ki.get_logits_layer(model)),
                       ("pooling", ki.get_global_pooling_layer(model))):
        (position,) = [i for i, row in enumerate(data["rows"]) if key in row["default_for"]]
        assert layers[position] is layer
        assert data["defaults"][key] == data["rows"][position]["path"]
    assert data["rows"][0]["output_shapes"][0][1:3] == [16, 16]  # stride-2 stem on a 32x32 input


def test_unknown_example_suggests_close_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "summary", "resnet50v3")
    assert code == 1
    assert_one_line_error(err, "'resnet50v3'", "'resnet50v2'")


def test_lambda_needs_unsafe(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    code, _, err = run(capsys, "summary", str(files["lambda"]))
    assert code == 1
    assert_one_line_error(err, "--unsafe", "Lambda")
    code, out, err = run(capsys, "summary", str(files["lambda"]), "--unsafe")
    assert code == 0, err
    assert "double" in out and "Lambda" in out


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("truncated", "truncated or corrupt"),
        ("garbage", "truncated or corrupt"),
        ("corrupt", "checksum"),
        ("not_keras", "not a .keras file"),
        ("no_config", "no config.json"),
    ],
)
def test_broken_files_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], key: str, fragment: str
) -> None:
    code, out, err = run(capsys, "summary", str(files[key]))
    assert code == 1 and out == ""
    assert_one_line_error(err, str(files[key]), fragment)
    with pytest.raises(ModelLoadError, match=fragment):
        load_model(files[key])


def test_a_class_that_is_not_importable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @keras.saving.register_keras_serializable(package="vanished_pkg")
    class Vanishing(keras.layers.Layer):
        def call(self, x: object) -> object:
            return x

    path = tmp_path / "vanishing.keras"
    keras.Sequential([keras.Input((3,)), Vanishing(name="v"), keras.layers.Dense(2)]).save(path)
    # As if the package defining it were not installed where the file is read.
    monkeypatch.delitem(keras.saving.get_custom_objects(), "vanished_pkg>Vanishing")
    code, _, err = run(capsys, "summary", str(path))
    assert code == 1
    assert_one_line_error(err, "'vanished_pkg>Vanishing'", "not importable")
    assert len(err) < 400


def test_missing_file_and_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "summary", str(tmp_path / "nothing.keras"))
    assert code == 1
    assert_one_line_error(err, "No such file")
    code, _, err = run(capsys, "summary", str(tmp_path) + os.sep)
    assert code == 1
    assert_one_line_error(err, "is a directory")


def test_image_size_is_for_examples_only(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, _, err = run(capsys, "summary", str(files["plain"]), "--image-size", "64")
    assert code == 1
    assert_one_line_error(err, "--image-size")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["summary", "mobilenetv2", "--image-size", "-3"])
    assert exit_info.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_unexpected_errors_have_no_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras_inspect.cli.loading as loading

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(loading, "resolve_model", explode)
    code, _, err = run(capsys, "summary", "anything")
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [
        "keras-inspect: unexpected RuntimeError: boom second line "
        f"(set {cli.DEBUG_ENV}=1 for the traceback)"
    ]
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["summary", "anything"])


def test_plugins_lists_every_loaded_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plugins", "--json")
    assert code == 0
    rows = json.loads(out)
    infos = ki.plugin_manager().plugin_infos()
    assert [row["name"] for row in rows] == [info.name for info in infos]
    for row, info in zip(rows, infos):
        assert row["hooks"] == list(info.hooks)
        assert row["distribution"]
    code, text, _ = run(capsys, "plugins")
    assert code == 0
    for info in infos:
        assert info.name in text
        for hook in info.hooks:
            assert hook in text


def test_plugins_shows_failed_plugins(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real installed-looking distribution whose entry point names a module that does not exist.
    dist_info = tmp_path / "keras_inspect_broken-0.0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: keras-inspect-broken\nVersion: 0.0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[keras_inspect]\nbroken = keras_inspect_broken_module_that_is_missing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="keras-inspect-broken"):
        pm = ki.new_plugin_manager()
    with ki.using_plugin_manager(pm):
        code, out, _ = run(capsys, "plugins")
    assert code == 0
    assert "broken  [keras-inspect-broken 0.0.1, FAILED]" in out
    assert "could not be imported" in out
    assert out.rstrip().endswith("1 failed.")


def test_progress_is_announced_only_for_slow_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "PROGRESS_DELAY", 0.05)
    quick, slow = io.StringIO(), io.StringIO()
    with cli.progress("loading quick", quick):
        pass
    with cli.progress("loading slow", slow):
        time.sleep(0.3)
    time.sleep(0.1)
    assert quick.getvalue() == ""
    assert slow.getvalue() == "loading slow ...\n"


def test_console_script_is_declared() -> None:
    scripts = importlib.metadata.entry_points(group="console_scripts")
    (script,) = [ep for ep in scripts if ep.name == "keras-inspect"]
    assert script.load() is cli.main


def test_python_dash_m(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # `python -m keras_inspect` runs keras_inspect/__main__.py as __main__ (in process: a new
    # interpreter would spend its time importing a backend).
    monkeypatch.setattr(sys, "argv", ["keras_inspect", "summary", "no-such-architecture"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("keras_inspect", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line_error(captured.err, "Unknown example model 'no-such-architecture'")


# -- what a new user sees first ----------------------------------------------------------------


def _table_line(out: str, name: str) -> list[str]:
    (line,) = [ln for ln in out.splitlines() if ln.startswith(name + " ")]
    return line.split()


def test_the_summary_names_the_chosen_layers_before_the_table(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, out, _ = run(capsys, "summary", str(files["plain"]))
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    picks = lines.index("A search by role picks (find_layer_with(model, role=...)):")
    assert picks < header
    assert lines[picks + 1].split() == ["logits", "logits", "Dense", "decided", "by", "fallback"]
    assert lines[picks + 2].split()[:3] == ["pooling", "pool", "GlobalMaxPooling2D"]
    # conv could produce logits (it has a kernel), but only the feature map search picks it.
    assert _table_line(out, "conv")[2] == "feature_map"
    assert _table_line(out, "logits")[2] == "logits"
    assert "(fallback)" not in out and "--candidates" in out


def test_candidates_on_request(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    code, out, _ = run(capsys, "summary", str(files["plain"]), "--candidates")
    assert code == 0
    assert _table_line(out, "conv")[2:6] == ["feature_map*", "(feature_map),", "logits",
                                             "(fallback)"]  # fmt: skip
    assert _table_line(out, "logits")[2:4] == ["logits*", "(fallback)"]
    code, out, _ = run(capsys, "summary", str(files["plain"]), "--role", "logits")
    assert code == 0
    assert [ln.split()[0] for ln in out.splitlines() if ln.startswith(("conv ", "logits "))] == [
        "conv", "logits",
    ]  # fmt: skip
    assert "2 layers playing role 'logits'" in out


def test_json_carries_the_chosen_layers_and_every_role(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, out, _ = run(capsys, "summary", str(files["plain"]), "--json")
    assert code == 0
    data = json.loads(out)
    chosen = {c["role"]: c["path"] for c in data["chosen"]}
    assert chosen["logits"] == ["logits"] and chosen["pooling"] == ["pool"]
    conv = next(row for row in data["rows"] if row["path"] == ["conv"])
    assert {r["role"] for r in conv["roles"]} >= {"logits", "feature_map"}
    assert conv["chosen_for"] == ["feature_map"]


# -- a quiet start: arguments first, backend noise filtered ------------------------------------

PACKAGE = Path(cli.__file__).resolve().parent.parent

# A package root that imports Keras on first use (as keras_inspect/__init__.py could): run the
# command line under it to see what the command itself imports and prints.
# The command as a user runs it, reporting which backends it imported.
AS_A_USER = """
import sys
from keras_inspect.cli.main import main
code = main(sys.argv[1:])
print("imported:", *sorted(m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules))
sys.exit(code)
"""


def _clean_run(*argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``python argv`` as a user would: none of the test run's logging settings."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(PACKAGE.parent),
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
        **{k: os.environ[k] for k in ("TF_ENABLE_ONEDNN_OPTS", "TMPDIR") if k in os.environ},
        **extra,
    }
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip


def test_a_missing_file_is_reported_before_any_backend_import(tmp_path: Path) -> None:
    missing = tmp_path / "missing.keras"
    result = _clean_run("-c", AS_A_USER, "summary", str(missing))
    assert result.returncode == cli.EXIT_ERROR
    assert result.stderr.splitlines() == [f"keras-inspect: error: No such file: '{missing}'."]
    assert result.stdout.split() == ["imported:"]


def test_the_backend_start_up_lines_are_filtered(files: dict[str, Path]) -> None:
    result = _clean_run("-c", AS_A_USER, "summary", str(files["plain"]))
    assert result.returncode == 0, result.stderr
    # Only the command's own progress notes (steps over a second) may remain.
    assert all(line.endswith(" ...") for line in result.stderr.splitlines()), result.stderr
    assert "A search by role picks" in result.stdout
    assert "keras" in result.stdout.splitlines()[-1].split()
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        # The same run unfiltered: TensorFlow does print start-up lines here.
        debug = _clean_run("-c", AS_A_USER, "summary", str(files["plain"]),
                           KERAS_INSPECT_DEBUG="1")  # fmt: skip
        assert debug.returncode == 0
        noise = [line for line in debug.stderr.splitlines() if not line.endswith(" ...")]
        assert noise and all(console.is_noise(line.encode()) for line in noise), noise


def test_a_missing_file_is_one_line_from_the_console_script(tmp_path: Path) -> None:
    missing = tmp_path / "missing.keras"
    result = _clean_run("-m", "keras_inspect", "summary", str(missing))
    assert result.returncode == cli.EXIT_ERROR
    assert result.stderr.splitlines() == [f"keras-inspect: error: No such file: '{missing}'."]
    # `import keras_inspect` (the package root) left Keras and the backend alone.
    probe = _clean_run("-c", "import sys, keras_inspect; print('keras' in sys.modules)")
    assert probe.stdout.strip() == "False", probe.stderr


def test_noise_lines_are_recognised() -> None:
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796135777.355384    4137 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:1796135777.355691    4137 cudart_stub.cc:31] Could not find cuda drivers on "
        "your machine, GPU will not be used.",
        "E0000 00:00:1796135782.818275    4137 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
        "with the appropriate compiler flags.",
    ]
    kept = [
        "F0000 00:00:1796135782.818275    4137 check.cc:12] Check failed: x == y",
        "E0000 00:00:1796135782.818275    4137 op_kernel.cc:1] Out of memory",
        "UserWarning: something a user should see",
        "keras-inspect: error: No such file: 'x.keras'.",
    ]
    assert all(console.is_noise(line.encode()) for line in noise)
    assert not any(console.is_noise(line.encode()) for line in kept)


def test_quiet_backend_keeps_everything_but_the_noise(capfd: pytest.CaptureFixture[str]) -> None:
    with console.quiet_backend():
        os.write(2, b"I0000 00:00:1.5  1 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"a native line that matters\npartial")
        sys.stderr.write("a Python line\n")
    sys.stderr.flush()
    err = capfd.readouterr().err
    assert sorted(err.splitlines()) == ["a Python line", "a native line that matters", "partial"]
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
