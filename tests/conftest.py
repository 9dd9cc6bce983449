"""Shared fixtures: isolated plugin managers, test plugins installed out of the way, small models.

Models are built here once per module (building Keras models dominates the suite's run time);
tests must not change them. Every model is small (16x16 images, a handful of channels).
"""

from __future__ import annotations

import contextlib
import io
import importlib
import importlib.metadata
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

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
EXAMPLE_PLUGIN_SOURCE = TESTS_DIR.parent / "examples" / "plugin-package"


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


# -- plugin distributions, installed out of the way ---------------------------------------------
#
# Tests that need a real installed distribution pip-install it into a per-session temporary
# directory and put that directory on sys.path (and PYTHONPATH, for subprocesses) only while a
# fixture holds it: the environment running the tests is never changed, and tests that do not ask
# for the distribution cannot see it.


def install_out_of_the_way(source: Path, workdir: Path) -> Path:
    """pip-install the distribution at ``source`` into a new directory under ``workdir``."""
    # Built from a copy, so setuptools' build/ and *.egg-info stay out of the source tree.
    build_dir = workdir / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(source, build_dir, ignore=ignore)
    target = workdir / "site"
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
        "--no-input", "--no-cache-dir", "--disable-pip-version-check",
        "--target", str(target), str(build_dir),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"could not install {source} with {' '.join(command)}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return target


def _forget_modules(package: str) -> None:
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]


@contextlib.contextmanager
def importable(directory: Path, package: str) -> Iterator[None]:
    """Make the distributions in ``directory`` importable and discoverable, in and out of process.

    ``directory`` comes first on the path, so its copy wins over one the user may have installed
    (``package`` is forgotten on entry in case that copy was imported already). On leaving,
    ``package`` is forgotten and the shared plugin manager dropped, so later tests neither import
    this copy nor see its entry points.
    """
    entry = str(directory)
    sys.path.insert(0, entry)
    with pytest.MonkeyPatch.context() as patch:
        inherited = os.environ.get("PYTHONPATH")
        patch.setenv("PYTHONPATH", os.pathsep.join([entry, inherited] if inherited else [entry]))
        _forget_modules(package)
        importlib.invalidate_caches()
        keras_inspect.reset_plugin_manager()
        try:
            yield
        finally:
            sys.path.remove(entry)
            _forget_modules(package)
            importlib.invalidate_caches()
            keras_inspect.reset_plugin_manager()


def import_from(directory: Path, package: str) -> ModuleType:
    """Import ``package``, checking that it is the copy installed in ``directory``."""
    module = importlib.import_module(package)
    location = Path(module.__file__ or "").resolve()
    if not location.is_relative_to(directory.resolve()):
        raise RuntimeError(f"{package} was imported from {location}, not from {directory}.")
    return module


@pytest.fixture(scope="session")
def test_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the ``tests/plugin_pkg`` distribution (built once per session/worker)."""
    return install_out_of_the_way(PLUGIN_SOURCE, tmp_path_factory.mktemp("testplugin"))


@pytest.fixture(scope="session")
def example_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the ``examples/plugin-package`` distribution (built once per session)."""
    return install_out_of_the_way(EXAMPLE_PLUGIN_SOURCE, tmp_path_factory.mktemp("plugin-package"))


@pytest.fixture(scope="module")
def test_plugin(test_plugin_site: Path) -> Iterator[ModuleType]:
    """The ``keras_inspect_testplugin`` module, installed and visible for one test module."""
    with importable(test_plugin_site, PLUGIN_MODULE):
        yield import_from(test_plugin_site, PLUGIN_MODULE)


# -- the test run leaves the environment as it found it ------------------------------------------


def _site_directories() -> list[str]:
    directories = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    if site.ENABLE_USER_SITE:
        directories.add(site.getusersitepackages())
    return sorted(directories)


def environment_distributions() -> frozenset[tuple[str, str, str]]:
    """(name, version, directory) of every distribution installed in the running environment.

    Read from the environment's site directories themselves, not sys.path, so that a
    distribution made importable by a fixture does not count.
    """
    found = set()
    for directory in _site_directories():
        for dist in importlib.metadata.distributions(path=[directory]):
            found.add((dist.metadata["Name"] or "?", dist.version, directory))
    return frozenset(found)


_ENVIRONMENT_BEFORE = pytest.StashKey[frozenset[tuple[str, str, str]]]()
_ENVIRONMENT_CHANGES = pytest.StashKey[list[str]]()


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    # The controller (or a run without xdist) compares what every worker left behind: it takes
    # its snapshot before starting the workers and checks it after they have all finished.
    if not _is_xdist_worker(session.config):
        session.config.stash[_ENVIRONMENT_BEFORE] = environment_distributions()


def pytest_sessionfinish(session: pytest.Session) -> None:
    before = session.config.stash.get(_ENVIRONMENT_BEFORE, None)
    if before is None:
        return
    after = environment_distributions()
    if after == before:
        return
    changes = [f"installed {name} {version} into {where}" for name, version, where in after - before]
    changes += [f"removed {name} {version} from {where}" for name, version, where in before - after]
    changes.sort()
    session.config.stash[_ENVIRONMENT_CHANGES] = changes
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    changes = config.stash.get(_ENVIRONMENT_CHANGES, None)
    if not changes:
        return
    title = "the Python environment changed during the test run"
    terminalreporter.section(title, sep="=", red=True, bold=True)
    for change in changes:
        terminalreporter.write_line(change, red=True)
    terminalreporter.write_line(
        "Tests must install what they need into a temporary directory (see conftest.importable)."
    )


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


def build_outer() -> keras.Model:
    """A Sequential ``outer`` around a functional ``backbone`` that ends in its own pooling layer."""
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(4, 3, name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    backbone = keras.Model(inputs, x, name="backbone")
    return keras.Sequential(
        [keras.Input((16, 16, 3)), backbone, layers.Dense(3, name="head")], name="outer"
    )


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


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal (for the rich views)."""

    def isatty(self) -> bool:
        return True


def to_numpy(value: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


__all__ = ["images", "keras_inspect", "to_numpy"]
