"""summary(model): rows in graph order, the deciding plugins, expose defaults, data and text views."""

from __future__ import annotations

import io
import json

import attrs
import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_inspect as ki
from conftest import FakeTerminal, build_outer
from keras_inspect.views.summary import LayerRow, ModelSummary, RoleChoice, RoleDecision, format_shapes


@pytest.fixture(scope="module")
def nested_model() -> keras.Model:
    return build_outer()


@pytest.fixture(scope="module")
def result(nested_model: keras.Model) -> ModelSummary:
    return ki.summary(nested_model)


def _row(s: ModelSummary, name: str) -> LayerRow:
    return next(row for row in s.rows if row.name == name)


def test_rows_follow_the_graph_walk(nested_model: keras.Model, result: ModelSummary) -> None:
    assert [row.path for row in result.rows] == [e.path for e in ki.walk(nested_model)]
    assert [row.type for row in result.rows] == [
        type(e.layer).__name__ for e in ki.walk(nested_model)
    ]
    assert result.model_name == "outer"
    assert result.model_type == "Sequential"


def test_roles_and_biases_agree_with_the_plugin_manager(
    nested_model: keras.Model, result: ModelSummary
) -> None:
    pm = ki.plugin_manager()
    for entry, row in zip(ki.walk(nested_model), result.rows):
        for role in result.roles:
            plays, plugin = pm.classify(entry.layer, role)
            decided = {d.role: d.plugin for d in row.roles}
            assert (role in decided) == plays
            if plays:
                assert decided[role] == plugin
        bias, plugin = pm.layer_bias(entry.layer)
        assert row.has_bias == (bias is not None)
        assert row.bias_plugin == (plugin if bias is not None else None)
    assert "normalization" in _row(result, "backbone/bn").role_names
    assert "pooling" in _row(result, "backbone/gap").role_names
    assert "logits" in _row(result, "backbone/conv").role_names
    assert not {"logits", "pooling", "normalization"} & set(_row(result, "backbone/relu").role_names)


def test_output_shapes_are_keras_own(nested_model: keras.Model, result: ModelSummary) -> None:
    backbone = nested_model.get_layer("backbone")
    for name in ("conv", "bn", "gap"):
        expected = tuple(backbone.get_layer(name).output.shape)
        assert _row(result, f"backbone/{name}").output_shapes == (expected,)
    assert _row(result, "head").output_shapes == (tuple(nested_model.layers[-1].output.shape),)


def test_expose_defaults_match_the_searches(
    nested_model: keras.Model, result: ModelSummary
) -> None:
    logits = ki.get_logits_layer(nested_model)
    pooling = ki.get_global_pooling_layer(nested_model)
    assert result.defaults.logits == ("head",) and logits.name == "head"
    assert result.defaults.pooling == ("backbone", pooling.name)
    gap_input = nested_model.get_layer("backbone").get_layer("gap").input
    assert result.defaults.feature_map_shapes == (tuple(gap_input.shape),)
    exposed = ki.expose(nested_model)
    assert tuple(exposed.outputs[1].shape) == result.defaults.feature_map_shapes[0]
    assert (tuple(exposed.outputs[0].shape),) == result.defaults.logits_shapes
    assert _row(result, "head").default_for == ("logits",)
    assert _row(result, "backbone/gap").default_for == ("pooling",)


def test_missing_pooling_is_reported_not_raised() -> None:
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, name="only")])
    s = ki.summary(model)
    assert s.defaults.logits == ("only",)
    assert s.defaults.pooling is None
    assert "pooling" in s.defaults.pooling_error
    assert "feature map: none" in str(s)


def test_role_filter_keeps_only_that_role(result: ModelSummary, nested_model: keras.Model) -> None:
    filtered = ki.summary(nested_model, role="normalization")
    assert [row.name for row in filtered.rows] == [
        row.name for row in result.rows if "normalization" in row.role_names
    ]
    assert filtered.role_filter == "normalization"
    with pytest.raises(ValueError, match="normalization"):
        ki.summary(nested_model, role="normalisation")


def test_the_deciding_plugin_is_named(nested_model: keras.Model) -> None:
    class Marker:
        @ki.hookimpl
        def keras_inspect_roles(self) -> list[str]:
            return ["activation"]

        @ki.hookimpl
        def keras_inspect_classify_layer(self, layer: object, role: str) -> bool | None:
            if role == "activation" and isinstance(layer, keras.layers.ReLU):
                return True
            return None

    pm = ki.new_plugin_manager(entrypoints=False)
    pm.register(Marker(), name="marker-plugin")
    s = ki.summary(nested_model, pm=pm)
    relu = _row(s, "backbone/relu")
    assert RoleDecision(role="activation", plugin="marker-plugin") in relu.roles
    assert "activation" not in _row(s, "backbone/conv").role_names
    assert "activation" in s.roles
    assert s.choice("activation") == RoleChoice(
        role="activation", path=("backbone", "relu"), type="ReLU", plugin="marker-plugin"
    )
    assert _line(str(s), "activation").split() == [
        "activation", "backbone/relu", "ReLU", "decided", "by", "marker-plugin"
    ]
    assert "activation* (marker-plugin)" in str(ki.summary(nested_model, pm=pm, candidates=True))


def test_to_dict_and_json_are_the_same_data(result: ModelSummary) -> None:
    data = result.to_dict()
    assert json.loads(result.to_json()) == data
    assert [row["path"] for row in data["rows"]] == [list(row.path) for row in result.rows]
    assert data["defaults"]["logits"] == ["head"]
    head = data["rows"][-1]
    assert head["roles"][0]["role"] == "logits"
    assert set(head) == {
        "path", "type", "roles", "has_bias", "bias_plugin", "output_shapes", "in_graph",
        "default_for", "chosen_for",
    }
    assert head["chosen_for"] == ["logits"]
    chosen = {c["role"]: c for c in data["chosen"]}
    assert set(chosen) == set(data["roles"])
    assert chosen["logits"]["path"] == ["head"] and chosen["logits"]["type"] == "Dense"
    assert chosen["pooling"]["path"] == ["backbone", "gap"]


def test_plain_text_lists_every_layer(result: ModelSummary) -> None:
    text = str(result)
    assert "\x1b[" not in text
    for row in result.rows:
        assert row.name in text
        assert format_shapes(row.output_shapes) in text
    buffer = io.StringIO()
    result.print(buffer)
    assert buffer.getvalue() == text + "\n"


def _line(text: str, start: str) -> str:
    """The one line of ``text`` that starts with ``start`` (after indentation)."""
    (line,) = [ln for ln in text.splitlines() if ln.strip().startswith(start + " ")]
    return line


def test_each_role_names_the_layer_its_search_picks(
    nested_model: keras.Model, result: ModelSummary
) -> None:
    assert [c.role for c in result.chosen][:4] == ["logits", "pooling", "normalization",
                                                   "feature_map"]  # fmt: skip
    layers = {row.path: entry.layer for row, entry in zip(result.rows, ki.walk(nested_model))}
    for choice in result.chosen:
        if choice.path is None:  # a role some installed plugin declares, for other models
            with pytest.raises(ki.NoMatchingLayerError):
                ki.find_layer_with(nested_model, role=choice.role)
            assert choice.error and not any(choice.role in r.chosen_for for r in result.rows)
            continue
        picked = ki.find_layer_with(nested_model, role=choice.role)
        assert layers[choice.path] is picked
        assert choice.type == type(picked).__name__
        assert choice.plugin == ki.plugin_manager().classify(picked, choice.role)[1]
        # Exactly one row is marked with the role: the chosen one.
        marked = [row.path for row in result.rows if choice.role in row.chosen_for]
        assert marked == [choice.path]
    assert result.choice("logits").path == ("head",)
    assert result.choice("normalization").path == ("backbone", "bn")
    assert result.choice("feature_map").path == ("backbone", "relu")


def test_the_table_marks_roles_only_where_a_search_picks_the_layer(result: ModelSummary) -> None:
    text = str(result)
    # conv plays logits (it has a kernel) and feature_map, but no search picks it.
    assert set(_row(result, "backbone/conv").role_names) == {"logits", "feature_map"}
    assert _line(text, "backbone/conv").split()[2] == "-"
    assert _line(text, "head").split()[2] == "logits"
    assert "(fallback)" not in text
    candidates = str(attrs.evolve(result, candidates=True))
    assert "feature_map (feature_map), logits (fallback)" in _line(candidates, "backbone/conv")
    assert "logits* (fallback)" in _line(candidates, "head")


def test_the_searches_and_expose_come_before_the_table(result: ModelSummary) -> None:
    lines = str(result).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    picks = lines.index("A search by role picks (find_layer_with(model, role=...)):")
    expose = next(i for i, line in enumerate(lines) if line.startswith("expose(model) returns"))
    assert 0 < picks < expose < header
    assert _line(str(result), "logits:").split()[1:] == ["output", "of", "'head',", "shape",
                                                         "(None,", "3)"]  # fmt: skip
    for choice in result.chosen:
        shown = "/".join(choice.path) if choice.path is not None else "none"
        assert shown in _line("\n".join(lines[picks:expose]), choice.role)


def test_a_role_no_layer_plays() -> None:
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, name="only")])
    s = ki.summary(model)
    pooling = s.choice("pooling")
    assert pooling.path is None and pooling.type is None
    assert "pooling" in pooling.error and pooling.error == s.defaults.pooling_error
    assert _line(str(s), "pooling").split()[1:] == ["none", "no", "layer", "plays", "it"]
    assert "expose(model) cannot pick its defaults" in str(s)


def test_a_role_filter_lists_every_candidate(nested_model: keras.Model) -> None:
    s = ki.summary(nested_model, role="logits")
    assert [row.name for row in s.rows] == ["backbone/conv", "head"]
    text = str(s)
    assert "2 layers playing role 'logits'" in text
    assert "logits (fallback)" in _line(text, "backbone/conv")
    assert "logits* (fallback)" in _line(text, "head")


def test_a_terminal_gets_the_rich_table(
    result: ModelSummary, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("rich")
    monkeypatch.setenv("COLUMNS", "250")
    terminal = FakeTerminal()
    result.print(terminal)
    shown = terminal.getvalue()
    assert shown != str(result) + "\n"
    assert "backbone/gap" in shown and "<- pooling input" in shown


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4))
def test_dense_stacks(widths: list[int]) -> None:
    layers = [keras.layers.Dense(w, name=f"d{i}") for i, w in enumerate(widths)]
    model = keras.Sequential([keras.Input((3,)), *layers])
    s = ki.summary(model)
    assert [row.name for row in s.rows] == [f"d{i}" for i in range(len(widths))]
    assert [row.output_shapes for row in s.rows] == [((None, w),) for w in widths]
    assert all(row.has_bias for row in s.rows)
    assert s.defaults.logits == (f"d{len(widths) - 1}",)


def test_summary_rejects_a_non_model() -> None:
    with pytest.raises(TypeError, match="Keras model"):
        ki.summary("resnet50")


def test_the_flavour_comes_from_the_model_flavour_hook(nested_model: keras.Model) -> None:
    from keras_inspect.adapters.keras3.graph import Keras3GraphReader as Keras3Flavour

    class TracingFlavour(Keras3Flavour):
        name = "traced-keras3"

    asked: list[object] = []

    class FlavourPlugin:
        @ki.hookimpl
        def keras_inspect_model_flavour(self, model: object) -> Keras3Flavour | None:
            asked.append(model)
            return TracingFlavour() if model is nested_model else None

    pm = ki.new_plugin_manager(entrypoints=False)
    pm.register(FlavourPlugin(), name="tracing-flavour")
    s = ki.summary(nested_model, pm=pm)
    assert s.flavour == "traced-keras3"
    assert nested_model in asked
    assert [row.path for row in s.rows] == [e.path for e in ki.walk(nested_model)]
    other = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert ki.summary(other, pm=pm).flavour == "keras3"


def test_an_explicit_manager_is_used_for_the_defaults_too(nested_model: keras.Model) -> None:
    class NoPooling:
        @ki.hookimpl(tryfirst=True)
        def keras_inspect_classify_layer(self, layer: object, role: str) -> bool | None:
            return False if role == "pooling" else None

    pm = ki.new_plugin_manager(entrypoints=False)
    pm.register(NoPooling(), name="no-pooling")
    s = ki.summary(nested_model, pm=pm)
    assert s.defaults.pooling is None and "pooling" in s.defaults.pooling_error
    assert ki.summary(nested_model).defaults.pooling == ("backbone", "gap")


def test_tf_keras_models_are_summarised() -> None:
    tf_keras = pytest.importorskip("tf_keras")
    model = tf_keras.Sequential(
        [
            tf_keras.Input((6, 6, 2)),
            tf_keras.layers.Conv2D(3, 3, name="conv"),
            tf_keras.layers.GlobalAveragePooling2D(name="gap"),
            tf_keras.layers.Dense(2, name="head"),
        ]
    )
    s = ki.summary(model)
    assert s.flavour != "keras3"
    assert [row.name for row in s.rows] == ["conv", "gap", "head"]
    assert _row(s, "conv").output_shapes == (tuple(model.get_layer("conv").output.shape),)
    assert s.defaults.logits == ("head",) and s.defaults.pooling == ("gap",)
    assert s.defaults.feature_map_shapes == ((None, 4, 4, 3),)


def test_multi_output_shapes_are_not_rich_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rich")
    monkeypatch.setenv("COLUMNS", "250")
    inputs = keras.Input((4,))
    a, b = keras.layers.Lambda(lambda x: [x * 1.0, x[:, :2]], name="split")(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(2, name="d")(a), b])
    s = ki.summary(model)
    assert _row(s, "split").output_shapes == ((None, 4), (None, 2))
    terminal = FakeTerminal()
    s.print(terminal)
    assert "[(None, 4), (None, 2)]" in terminal.getvalue()
    assert "[(None, 4), (None, 2)]" in str(s)
