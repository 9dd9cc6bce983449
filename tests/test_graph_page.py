"""The graph page: its data (every backend) and the page itself in a real headless Chromium.

The page holds names, shapes and indices, never a tensor, so it is the same on every backend:
its data is checked on each, the browser tests run once (on TensorFlow). They drive Debian's
Chromium through Playwright; where no browser is installed they skip and say why, unless
``KERAS_INSPECT_REQUIRE_BROWSER=1`` (set by ``.ci/run`` once it has installed one) makes that a
failure.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import keras
import pytest

from conftest import build_outer
import keras_inspect as ki
from keras_inspect.cli import main as cli
from keras_inspect.graph.inspected import inspect_model
from keras_inspect.views.graph_page import LIMITS, page_data, token_geometry_of
from keras_inspect.cli.loading import build_example

BROWSER_BACKEND = "tensorflow"
DATA = re.compile(r'<script type="application/json" id="ki-data">(.*?)</script>', re.DOTALL)


def data_of(page: str) -> dict[str, Any]:
    match = DATA.search(page)
    assert match is not None
    return json.loads(match.group(1))


def walk_index(model: keras.Model, path: str) -> int:
    # Paths, not positions; note that Keras numbers automatic names per process ("vi_t_backbone_1").
    return [entry.name for entry in ki.walk(model)].index(path)


# -- models ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nested() -> keras.Model:
    return build_outer()


@pytest.fixture(scope="module")
def vit() -> keras.Model:
    keras_hub = pytest.importorskip("keras_hub", reason="the keras-hub ViT needs keras-hub")
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
        mlp_dim=32,
    )  # fmt: skip
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=3, preprocessor=None)


# -- the data, on every backend -----------------------------------------------------------------


def test_every_layer_of_the_walk_is_a_node_with_its_group(nested: keras.Model) -> None:
    data = page_data(ki.summary(nested))
    walk = ki.walk(nested)
    assert data["model"]["layers"] == len(walk) == len(data["nodes"]) == 6
    assert [n["name"] for n in data["nodes"]] == [e.path[-1] for e in walk]
    assert [n["parent"] for n in data["nodes"]] == [None, 0, 0, 0, 0, None]
    assert [n["kind"] for n in data["nodes"]] == ["model"] + ["layer"] * 5
    bn = data["nodes"][2]
    assert bn["type"] == "BatchNormalization" and bn["bias"]
    assert bn["chosenFor"] == ["normalization"]
    assert ["normalization", "normalization"] in bn["roles"]


def test_edges_cross_the_nested_model_s_boundary(nested: keras.Model) -> None:
    data = page_data(ki.summary(nested))
    inputs, outputs = 6, 7  # terminals are numbered after the six layers
    assert [t["kind"] for t in data["terminals"]] == ["input", "output"]
    # The outer input feeds the backbone's first layer; the backbone's last feeds the head.
    assert sorted(map(tuple, data["edges"])) == sorted(
        [(inputs, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, outputs)]
    )


def test_edges_cross_two_levels_of_nesting() -> None:
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="i1"), keras.layers.Dense(3, name="i2")],
        name="inner",
    )
    mid = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2, name="m1")], name="mid")
    outer = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="o0"), mid,
                              keras.layers.Dense(2, name="o1")])  # fmt: skip
    data = page_data(ki.summary(outer))
    assert [n["name"] for n in data["nodes"]] == ["o0", "mid", "inner", "i1", "i2", "m1", "o1"]
    assert [n["parent"] for n in data["nodes"]] == [None, None, 1, 2, 2, 1, None]
    assert sorted(map(tuple, data["edges"])) == [(0, 3), (3, 4), (4, 5), (5, 6), (6, 8), (7, 0)]


def test_a_layer_called_in_two_models_is_a_node_at_each_place() -> None:
    shared = keras.layers.Dense(4, name="shared")
    inner_input = keras.Input((4,))
    inner = keras.Model(inner_input, shared(inner_input), name="inner")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, shared(inner(inputs)))
    data = page_data(ki.summary(model))
    assert [n["name"] for n in data["nodes"]] == ["inner", "shared", "shared"]
    assert [n["parent"] for n in data["nodes"]] == [None, 0, None]
    assert sorted(map(tuple, data["edges"])) == [(1, 2), (2, 4), (3, 1)]


def test_edges_pass_through_operations_and_every_call_of_a_shared_model() -> None:
    shared = keras.layers.Dense(3, name="shared")
    tower = keras.Sequential([keras.Input((4,)), shared], name="tower")
    left, right = keras.Input((4,), name="left"), keras.Input((4,), name="right")
    joined = keras.layers.Concatenate(name="cat")([tower(left), tower(right)])
    sliced = joined[:, :4]  # a Keras operation, not a layer: not in the walk
    model = keras.Model([left, right], keras.layers.Dense(2, name="out")(sliced))
    data = page_data(ki.summary(model))
    names = [n["name"] for n in data["nodes"]]
    assert names == ["tower", "shared", "cat", "out"]
    left_t, right_t, out_t = 4, 5, 6
    assert sorted(map(tuple, data["edges"])) == sorted(
        [(left_t, 1), (right_t, 1), (1, 2), (2, 3), (3, out_t)]
    )


def test_a_tf_keras_model_has_the_same_picture() -> None:
    tf_keras = pytest.importorskip("tf_keras", reason="Keras 2 models need tf_keras")
    inputs = tf_keras.Input((8, 8, 3))
    x = tf_keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D(name="gap")(x)
    backbone = tf_keras.Model(inputs, x, name="backbone")
    head = tf_keras.layers.Dense(2, name="head")
    model = tf_keras.Sequential([tf_keras.Input((8, 8, 3)), backbone, head])
    data = page_data(ki.summary(model))
    assert [n["name"] for n in data["nodes"]] == ["backbone", "conv", "gap", "head"]
    assert [n["kind"] for n in data["nodes"]] == ["model", "layer", "layer", "layer"]
    assert sorted(map(tuple, data["edges"])) == [(1, 2), (2, 3), (3, 5), (4, 1)]
    assert data["defaults"]["logits"]["node"] == 3 and data["defaults"]["featureMap"]["node"] == 2


def test_layers_reached_by_interception_are_grouped_under_their_owner(vit: keras.Model) -> None:
    data = page_data(ki.summary(vit))
    walk = ki.walk(vit)
    assert len(data["nodes"]) == len(walk)
    encoder = walk_index(vit, f"{vit.backbone.name}/vit_encoder")
    block = walk_index(vit, f"{vit.backbone.name}/vit_encoder/transformer_block_1")
    dense = walk_index(vit, f"{vit.backbone.name}/vit_encoder/transformer_block_1/mlp/dense_1")
    nodes = data["nodes"]
    assert nodes[encoder]["kind"] == "owner" and nodes[encoder]["inGraph"]
    assert nodes[block]["parent"] == encoder and not nodes[block]["inGraph"]
    assert nodes[walk_index(vit, vit.backbone.name)]["kind"] == "model"
    mlp = nodes[dense]["parent"]
    assert nodes[mlp]["name"] == "mlp" and nodes[mlp]["parent"] == block
    # No edge touches a layer without a graph; the encoder is fed by the patch embedding and
    # feeds the head through the class-token slice (an operation, looked through).
    inner = {i for i, n in enumerate(nodes) if not n["inGraph"]}
    assert not inner & {i for edge in data["edges"] for i in edge}
    head = walk_index(vit, "output_dropout")
    assert [encoder, head] in data["edges"]
    patches = walk_index(vit, f"{vit.backbone.name}/vit_patching_and_embedding")
    assert [patches, encoder] in data["edges"]


def test_each_search_path_replays_the_reverse_strategy(nested: keras.Model) -> None:
    s = ki.summary(nested)
    data = page_data(s)
    layers = [e.layer for e in ki.walk(nested)]
    everything = list(range(len(layers) - 1, -1, -1))
    for pick in data["chosen"]:
        assert pick["strategy"] == "reverse"
        if not pick["found"]:  # a role no layer of this model plays: every layer was looked at
            with pytest.raises(ki.NoMatchingLayerError):
                ki.find_layer_with(nested, role=pick["role"])
            assert pick["visited"] == everything and pick["node"] is None
            continue
        answer = layers.index(ki.find_layer_with(nested, role=pick["role"]))
        assert pick["visited"] == everything[: everything.index(answer) + 1]
        assert pick["node"] == answer
    assert [p["visited"] for p in data["chosen"] if p["role"] == "normalization"] == [[5, 4, 3, 2]]


def test_a_role_nobody_plays_visits_every_layer(vit: keras.Model) -> None:
    data = page_data(ki.summary(vit))
    (pooling,) = [p for p in data["chosen"] if p["role"] == "pooling"]
    assert not pooling["found"] and pooling["node"] is None and "pooling" in pooling["error"]
    # Every layer, in the reverse strategy's order (a layer before those it calls itself).
    paths = [entry.path for entry in ki.walk(vit)]
    order = [paths.index(e.path) for e in inspect_model(vit).reversed_entries()]
    assert pooling["visited"] == order and sorted(order) == list(range(len(data["nodes"])))
    # No pooling layer: the feature map is the token sequence the class-token slice reads.
    encoder = walk_index(vit, f"{vit.backbone.name}/vit_encoder")
    assert data["defaults"]["featureMap"]["node"] == encoder and not data["defaults"]["featureMapError"]
    assert data["defaults"]["logits"]["node"] == walk_index(vit, "predictions")


def test_hostile_names_are_bounded_data_never_markup() -> None:
    inputs = keras.Input((4,))
    first = keras.layers.Dense(3, name="first")
    huge = keras.layers.Dense(2, name="n" * 1_000_000)
    model = keras.Model(inputs, huge(first(inputs)), name="m<!--&")
    # Keras refuses "/" in names; a file or plugin might still get one through.
    first.name = "</script><script>document.title='pwned'</script>\u202e<!--"
    page = ki.summary(model).to_html()
    assert len(page) < 400_000  # the million-character name costs its clipped length once
    assert page.lower().count("</script") == 4  # the page's own four script elements
    assert "<!--" not in DATA.search(page).group(1)
    data = data_of(page)
    names = [n["name"] for n in data["nodes"]]
    assert names[0] == "</script><script>document.title='pwned'</script>\\u202e<!--"
    assert names[1].startswith("n" * LIMITS["name"]) and "999800 more characters" in names[1]
    assert data["model"]["name"] == "m<!--&"


def test_the_summary_data_is_unchanged_and_the_notebook_view_is_sandboxed(
    nested: keras.Model,
) -> None:
    s = ki.summary(nested)
    assert "graph" not in s.to_dict() and s.graph is not None
    assert attrs.evolve(s, graph=None) == s  # the structure takes no part in equality
    frame = s._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in frame
    assert "<script" not in frame  # the page is an attribute value: all of it escaped
    srcdoc = re.match(r'<iframe srcdoc="([^"]*)"', frame).group(1)
    assert data_of(html.unescape(srcdoc)) == data_of(s.to_html())
    with pytest.raises(ValueError, match="no graph structure"):
        attrs.evolve(s, graph=None).to_html()


def test_token_geometry_is_shown_where_the_model_has_one(vit: keras.Model, nested: keras.Model) -> None:
    assert page_data(ki.summary(nested))["tokenGeometry"] == []  # a CNN has none
    s = ki.summary(vit)
    (found,) = page_data(s)["tokenGeometry"]  # the summary's own, by default
    assert found["node"] == walk_index(vit, f"{vit.backbone.name}/vit_encoder")

    @attrs.frozen
    class Geometry:
        prefix_tokens: int
        grid: tuple[int, int]

    shown = page_data(s, token_geometry={f"{vit.backbone.name}/vit_encoder": Geometry(1, (4, 4))})
    (entry,) = shown["tokenGeometry"]
    assert entry["node"] == walk_index(vit, f"{vit.backbone.name}/vit_encoder")
    assert entry["fields"] == [["prefix_tokens", "1"], ["grid", "(4, 4)"]]
    with pytest.raises(TypeError, match="must hold what keras_inspect.token_geometry returns"):
        page_data(s, token_geometry=[1, 2])
    with pytest.raises(TypeError, match="or a mapping from a token signal"):
        page_data(s, token_geometry=3)


def test_the_token_geometry_keras_inspect_finds(vit: keras.Model, nested: keras.Model) -> None:
    geometry = token_geometry_of(vit)  # what the command shows
    (entry,) = page_data(ki.summary(vit), token_geometry=geometry)["tokenGeometry"]
    assert entry["node"] == walk_index(vit, "/".join(geometry.signal.path))
    assert dict(entry["fields"]) == {
        "link": "output", "tokens": "17", "prefix_tokens": "1", "grid": "(4, 4)",
        "patch_size": "(8, 8)", "image_shape": "(32, 32)",
    }  # fmt: skip
    assert token_geometry_of(nested) is None  # a CNN: no patch embedding


class _Block(keras.layers.Layer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.first, self.second = keras.layers.Dense(4, name="d1"), keras.layers.Dense(4, name="d2")

    def call(self, x: Any) -> Any:
        return self.second(self.first(x))


class _Net(keras.Model):
    def __init__(self) -> None:
        super().__init__(name="net")
        self.block, self.head = _Block(name="block"), keras.layers.Dense(2, name="out")

    def call(self, x: Any) -> Any:
        return self.head(self.block(x))


@pytest.fixture(scope="module")
def subclassed() -> keras.Model:
    model = _Net()
    model(keras.ops.zeros((1, 3)))
    return model


def test_a_subclassed_model_has_groups_but_no_connections(subclassed: keras.Model) -> None:
    data = page_data(ki.summary(subclassed))
    assert [n["name"] for n in data["nodes"]] == ["block", "d1", "d2", "out"]
    assert [n["kind"] for n in data["nodes"]] == ["owner", "layer", "layer", "layer"]
    assert not data["model"]["hasGraph"] and data["edges"] == [] and data["terminals"] == []


def test_a_graph_it_cannot_follow_leaves_the_summary_whole(
    nested: keras.Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keras_inspect.views import graph_data

    def broken(self: Any) -> None:
        raise RuntimeError("an unusual graph record")

    monkeypatch.setattr(graph_data._EdgeTracer, "trace", broken)
    s = ki.summary(nested)
    assert len(s.rows) == 6 and s.choice("logits").path == ("head",)
    data = page_data(s)
    assert data["edges"] == [] and data["terminals"] == []
    assert data["model"]["edgesError"] == "RuntimeError: an unusual graph record"


# -- the command ---------------------------------------------------------------------------------


def test_the_command_writes_the_page_of_a_file(
    nested: keras.Model, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_file = tmp_path / "nested.keras"
    nested.save(model_file)
    out = tmp_path / "page.html"
    assert cli.main(["graph", str(model_file), "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert data_of(out.read_text("utf-8"))["model"]["layers"] == len(ki.walk(nested))
    assert cli.main(["graph", str(model_file), "-o", "-"]) == 0
    assert data_of(capsys.readouterr().out)["model"]["name"] == "outer"


@pytest.mark.parametrize(
    ("output", "message"),
    [("{tmp}", "is a directory"), ("{tmp}/missing/page.html", "no directory"),
     ("{tmp}/nested.keras", "is the model file itself")],
)  # fmt: skip
def test_a_bad_output_is_one_line_before_any_backend_import(
    nested: keras.Model, tmp_path: Path, output: str, message: str
) -> None:
    from test_cli import AS_A_USER, _clean_run

    model_file = tmp_path / "nested.keras"
    nested.save(model_file)
    target = output.format(tmp=tmp_path)
    result = _clean_run("-c", AS_A_USER, "graph", str(model_file), "-o", target)
    assert result.returncode == cli.EXIT_ERROR
    (line,) = result.stderr.splitlines()
    assert line.startswith("keras-inspect: error: ") and message in line
    assert result.stdout.split() == ["imported:"]


# -- in a real browser ---------------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    if os.environ.get("KERAS_INSPECT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"KERAS_INSPECT_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def _chromium() -> str | None:
    given = os.environ.get("KERAS_INSPECT_CHROMIUM")
    if given:
        return given
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    return next((found for name in names if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if keras.backend.backend() != BROWSER_BACKEND:
        pytest.skip(
            "the page holds names, shapes and indices, never a tensor, so it is the same on "
            f"every backend: the browser tests run on {BROWSER_BACKEND} only (the page's data "
            "is tested on each backend)"
        )
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install 'keras-inspect[test]')")
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium found: install Debian's chromium (make browser, or apt-get)")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=executable,
                # As root, Chromium needs --no-sandbox; the rest keeps it off the network.
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
        except Error as error:
            _unavailable(f"Chromium at {executable} did not start: {str(error).splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture
def show(browser: Any, tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """Open a page from a file; at the end, assert it logged no error and opened no dialog."""
    problems: list[str] = []
    pages = []

    def open_page(page_html: str) -> Any:
        file = tmp_path / f"page{len(pages)}.html"
        file.write_text(page_html, encoding="utf-8")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.goto(file.as_uri())
        page.wait_for_selector("body[data-ready]", timeout=30_000)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.close()
    assert problems == []


def drawn(page: Any) -> list[int]:
    return marked(page, "#ki-svg [data-index]")


def marked(page: Any, css: str) -> list[int]:
    return page.eval_on_selector_all(css, "els => els.map(e => +e.dataset.index)")


def test_mobilenetv2_page_from_the_command_line(
    show: Callable[[str], Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mobilenetv2.html"
    assert cli.main(["graph", "mobilenetv2", "--image-size", "32", "-o", str(out)]) == 0
    capsys.readouterr()
    model = build_example("mobilenetv2", image_size=32)  # the same architecture, built again
    walk = ki.walk(model)
    page = show(out.read_text("utf-8"))
    assert sorted(drawn(page)) == list(range(len(walk)))
    assert page.locator("path.edge").count() == len(data_of(out.read_text("utf-8"))["edges"])
    last = [e.path[-1] for e in walk]
    assert marked(page, ".endpoint-logits") == [last.index("predictions")]
    (pooling,) = marked(page, ".endpoint-feature-map")
    assert last[pooling].startswith("global_average_pooling2d")
    assert page.locator("path.edge.feature-map").count() == 1
    assert float(page.get_attribute("body", "data-layout-ms")) < 10_000
    # "Why this layer?": the normalization search's path, ending at its answer.
    page.get_by_text("why? the reverse search looked at 4 layers").click()
    assert sorted(marked(page, "#ki-svg .on-path")) == list(range(len(walk) - 4, len(walk)))
    assert marked(page, "#ki-svg .answer") == [last.index("Conv_1_bn")]
    # The search box finds a layer and selects it.
    page.fill("#ki-search", "block_6_expand_relu")
    assert page.text_content("#ki-result-count") == "1 layer match"
    page.press("#ki-search", "Enter")
    assert marked(page, "#ki-svg .selected") == [last.index("block_6_expand_relu")]
    assert page.text_content("#ki-details dd") == "block_6_expand_relu"
    assert not page.is_visible("#ki-tokens")  # a CNN has no token geometry


def test_folding_a_nested_sequential(show: Callable[[str], Any], nested: keras.Model) -> None:
    page = show(ki.summary(nested).to_html())
    assert sorted(drawn(page)) == list(range(6))
    assert marked(page, ".endpoint-logits") == [5] and marked(page, ".endpoint-feature-map") == [4]
    page.click(".cluster [data-toggle='0']")  # fold the backbone
    assert sorted(drawn(page)) == [0, 5]
    assert marked(page, "#ki-svg .holds-endpoint") == [0]  # the feature map is inside it
    assert "holds the feature map" in page.text_content("#ki-svg [data-index='0']")
    assert page.locator("path.edge").count() == 3  # input -> backbone -> head -> output
    page.fill("#ki-search", "bn")
    page.press("#ki-search", "Enter")  # a nested layer: the backbone unfolds to show it
    assert sorted(drawn(page)) == list(range(6))
    assert marked(page, "#ki-svg .selected") == [2]


def test_a_keras_hub_vit(show: Callable[[str], Any], vit: keras.Model) -> None:
    walk = ki.walk(vit)
    page = show(ki.summary(vit).to_html(token_geometry=token_geometry_of(vit)))
    assert len(drawn(page)) < len(walk)  # the intercepted layers start folded
    assert page.is_visible("#ki-tokens") and "prefix_tokens" in page.text_content("#ki-tokens")
    assert marked(page, ".endpoint-logits") == [walk_index(vit, "predictions")]
    encoder = walk_index(vit, f"{vit.backbone.name}/vit_encoder")
    assert marked(page, ".endpoint-feature-map") in ([], [encoder])  # folded inside the backbone
    page.click("#ki-unfold-all")
    assert marked(page, ".endpoint-feature-map") == [encoder]
    assert sorted(drawn(page)) == list(range(len(walk)))
    page.click("#ki-fold-all")
    tops = [vit.backbone.name, "output_dropout", "predictions"]
    assert sorted(drawn(page)) == [walk_index(vit, name) for name in tops]
    target = f"{vit.backbone.name}/vit_encoder/transformer_block_2/mlp/dense_2"
    page.fill("#ki-search", "block_2/mlp/dense_2")
    assert page.text_content("#ki-result-list") == f"{target}  (Dense)"
    page.press("#ki-search", "Enter")
    assert marked(page, "#ki-svg .selected") == [walk_index(vit, target)]
    assert page.is_visible("#ki-svg .row.selected")


def test_no_token_geometry_no_section(show: Callable[[str], Any], nested: keras.Model) -> None:
    page = show(ki.summary(nested).to_html())
    assert not page.is_visible("#ki-tokens")
    assert marked(page, "#ki-svg .match") == []


def test_a_role_filter_highlights_its_candidates(
    show: Callable[[str], Any], nested: keras.Model
) -> None:
    page = show(ki.summary(nested, role="logits").to_html())
    assert sorted(drawn(page)) == list(range(6))  # the page shows the whole model
    assert marked(page, "#ki-svg .match") == [1, 5]  # conv and head can produce logits


def test_hostile_names_are_shown_as_text(show: Callable[[str], Any]) -> None:
    inputs = keras.Input((4,))
    layer = keras.layers.Dense(3, name="first")
    model = keras.Model(inputs, layer(inputs), name="m<img src=x onerror=alert(1)>")
    layer.name = "</script><img src=x onerror=alert(2)><!--"
    page = show(ki.summary(model).to_html())  # a dialog or a blocked load would be a problem
    assert page.title() == "m<img src=x onerror=alert(1)> \u2014 keras-inspect graph"
    assert page.text_content("#ki-svg [data-index='0'] .name") == layer.name
    assert page.locator("img").count() == 0


def test_a_subclassed_model_is_a_column_in_tracking_order(
    show: Callable[[str], Any], subclassed: keras.Model
) -> None:
    page = show(ki.summary(subclassed).to_html())
    assert sorted(drawn(page)) == [0, 3] and page.locator("path.edge.tracking").count() == 1
    boxes = [page.locator(f"#ki-svg [data-index='{i}']").bounding_box() for i in (0, 3)]
    assert boxes[0]["y"] + boxes[0]["height"] < boxes[1]["y"]  # one above the other
    page.click("#ki-unfold-all")
    assert sorted(drawn(page)) == [0, 1, 2, 3]


def test_a_layer_called_again_later_keeps_the_flow_downwards(show: Callable[[str], Any]) -> None:
    inputs = keras.Input((4,))
    tied, middle = keras.layers.Dense(4, name="tied"), keras.layers.Dense(4, name="middle")
    model = keras.Model(inputs, tied(middle(tied(inputs))))  # as a tied embedding is used twice
    data = page_data(ki.summary(model))
    assert sorted(map(tuple, data["edges"])) == [(0, 1), (0, 3), (1, 0), (2, 0)]
    page = show(ki.summary(model).to_html())
    assert page.locator("path.edge.later").count() == 1  # middle -> tied, drawn aside
    boxes = [page.locator(f"#ki-svg [data-index='{i}']").bounding_box() for i in (0, 1)]
    assert boxes[0]["y"] < boxes[1]["y"]  # tied (first called) above middle
