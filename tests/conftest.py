"""Shared fixtures: isolated plugin managers, the installed test plugin, and small models.

Models are built here once per module (building Keras models dominates the suite's run time);
tests must not change them. Every model is small (16x16 images, a handful of channels).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if os.environ.get("KERAS_BACKEND") == "jax":
    # Eager JAX compiles every operation for every new shape; with XLA's default optimisation a
    # random initializer alone takes seconds per shape on a small CPU. The tests' models are
    # tiny, so compiling fast matters far more than running fast. Must be set before JAX starts.
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from keras import layers  # noqa: E402

import keras_inspect  # noqa: E402
from keras_inspect import InspectPluginManager, new_plugin_manager, using_plugin_manager  # noqa: E402

# Keras' first eager call of a layer is slow (tracing, kernel selection); a deadline would only
# measure that. Examples stay few per test (set with @settings where a test varies inputs).
settings.register_profile(
    "keras-inspect",
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("keras-inspect")

TESTS_DIR = Path(__file__).resolve().parent
PLUGIN_SOURCE = TESTS_DIR / "plugin_pkg"
PLUGIN_DISTRIBUTION = "keras-inspect-testplugin"
PLUGIN_MODULE = "keras_inspect_testplugin"
PLUGIN_ENTRY_POINT = "testplugin"


# -- plugin managers -------------------------------------------------------------------------


@pytest.fixture
def fresh_pm() -> Iterator[InspectPluginManager]:
    """A new manager with the built-in adapters only, current for the test's duration.

    Entry points are left out so that whatever plugins happen to be installed cannot change
    what a test observes; in-process registrations made by the test die with the manager.
    """
    pm = new_plugin_manager(entrypoints=False)
    with using_plugin_manager(pm):
        yield pm


# -- the test plugin distribution ------------------------------------------------------------


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(PLUGIN_SOURCE.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".toml"}:
            digest.update(str(path.relative_to(PLUGIN_SOURCE)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _installed_digest() -> str | None:
    """The digest of the sources the installed copy was built from (``None``: not installed)."""
    try:
        dist = importlib.metadata.distribution(PLUGIN_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    # The installed copy must match the source tree file by file, or it is stale.
    installed = {str(f): f for f in dist.files or ()}
    digest = hashlib.sha256()
    for path in sorted(PLUGIN_SOURCE.rglob("*")):
        if not (path.is_file() and path.suffix in {".py", ".toml"}):
            continue
        relative = path.relative_to(PLUGIN_SOURCE)
        digest.update(str(relative).encode())
        if relative.name == "pyproject.toml":
            digest.update(path.read_bytes())
            continue
        key = str(Path(*relative.parts[1:]))  # drop the "src/" of the source layout
        if key not in installed:
            return "missing " + key
        digest.update(Path(dist.locate_file(installed[key])).read_bytes())
    entry_points = {(e.group, e.name, e.value) for e in dist.entry_points}
    if ("keras_inspect", PLUGIN_ENTRY_POINT, PLUGIN_MODULE) not in entry_points:
        return "stale entry points"
    return digest.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # pytest-xdist workers share the venv: only one of them may run pip at a time.
    import fcntl

    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install_test_plugin(workdir: Path) -> None:
    """Install ``tests/plugin_pkg`` into the running interpreter's environment if needed."""
    if _installed_digest() == _source_digest():
        return
    lock = Path(os.environ.get("TMPDIR", "/tmp")) / "keras-inspect-testplugin.lock"
    with _file_lock(lock):
        importlib.invalidate_caches()
        if _installed_digest() == _source_digest():
            return
        # Build from a copy, so setuptools' build/ and *.egg-info stay out of the source tree.
        build_dir = workdir / "plugin_pkg"
        shutil.rmtree(build_dir, ignore_errors=True)
        shutil.copytree(PLUGIN_SOURCE, build_dir)
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--no-input", "--disable-pip-version-check",
            "--force-reinstall", str(build_dir),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"could not install the test plugin with {' '.join(command)}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
    importlib.invalidate_caches()
    if _installed_digest() != _source_digest():
        raise RuntimeError(f"{PLUGIN_DISTRIBUTION} was installed but does not match {PLUGIN_SOURCE}.")


@pytest.fixture(scope="session")
def test_plugin(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The installed ``keras_inspect_testplugin`` module (installing it on first use)."""
    install_test_plugin(tmp_path_factory.mktemp("testplugin"))
    return importlib.import_module(PLUGIN_MODULE)


# -- models ------------------------------------------------------------------------------------

IMAGE_SHAPE = (16, 16, 3)


def images(batch: int = 2, shape: tuple[int, ...] = IMAGE_SHAPE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype("float32")


# Layers are built with constant initializers and then given random weights from NumPy: Keras'
# random initializers are compiled per shape on the JAX backend, which dominates build time.
CHEAP = {"kernel_initializer": "zeros"}


def randomize_weights(model: keras.layers.Layer, seed: int = 0) -> keras.layers.Layer:
    """Give every weight of ``model`` random values (variances positive), deterministically."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.path:
            value = rng.uniform(0.5, 2.0, size=shape)
        else:
            value = rng.normal(0.0, 0.5, size=shape)
        variable.assign(value.astype(variable.dtype))
    return model


def build_cnn() -> keras.Model:
    """conv1 -> bn1 -> relu1 -> conv2 (fused relu) -> gap -> logits, all top-level."""
    inputs = keras.Input(IMAGE_SHAPE, name="image")
    x = layers.Conv2D(4, 3, name="conv1", **CHEAP)(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.Activation("relu", name="relu1")(x)
    x = layers.Conv2D(6, 3, activation="relu", name="conv2", **CHEAP)(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(5, name="logits", **CHEAP)(x)
    return randomize_weights(keras.Model(inputs, outputs, name="cnn"))


def build_backbone() -> keras.Model:
    inputs = keras.Input(IMAGE_SHAPE, name="backbone_input")
    x = layers.Conv2D(4, 3, name="b_conv1", **CHEAP)(inputs)
    x = layers.BatchNormalization(name="b_bn")(x)
    x = layers.Activation("relu", name="b_relu")(x)
    x = layers.Conv2D(6, 3, name="b_conv2", **CHEAP)(x)
    return keras.Model(inputs, x, name="backbone")


def build_nested() -> keras.Model:
    """A Sequential around a functional backbone: ``backbone/b_conv2`` is the last feature map."""
    model = keras.Sequential(
        [
            keras.Input(IMAGE_SHAPE, name="image"),
            build_backbone(),
            layers.GlobalAveragePooling2D(name="avg_pool"),
            layers.Dense(5, name="predictions", **CHEAP),
        ],
        name="nested",
    )
    return randomize_weights(model, seed=1)


def build_shared() -> keras.Model:
    """One Dense layer called on two inputs (two nodes), then a concatenation (list input)."""
    left = keras.Input((3,), name="left")
    right = keras.Input((3,), name="right")
    shared = layers.Dense(4, name="shared", **CHEAP)
    merged = layers.Concatenate(name="concat")([shared(left), shared(right)])
    outputs = layers.Dense(2, name="head", **CHEAP)(merged)
    return randomize_weights(keras.Model([left, right], outputs, name="two_towers"), seed=2)


def build_no_pooling() -> keras.Model:
    inputs = keras.Input((8,), name="features")
    x = layers.Dense(4, name="hidden", **CHEAP)(inputs)
    outputs = layers.Dense(3, name="out", **CHEAP)(x)
    return randomize_weights(keras.Model(inputs, outputs, name="mlp"), seed=3)


@pytest.fixture(scope="module")
def cnn() -> keras.Model:
    return build_cnn()


@pytest.fixture(scope="module")
def nested() -> keras.Model:
    return build_nested()


@pytest.fixture(scope="module")
def shared_model() -> keras.Model:
    return build_shared()


@pytest.fixture(scope="module")
def mlp() -> keras.Model:
    return build_no_pooling()


def to_numpy(value: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


__all__ = ["images", "keras_inspect", "to_numpy"]
