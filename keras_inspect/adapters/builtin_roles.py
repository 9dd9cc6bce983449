"""Built-in adapter: the role names keras-inspect knows without any plugin."""

from __future__ import annotations

from keras_inspect.hooks.specs import hookimpl

BUILTIN_ROLES = (
    "normalization",
    "pooling",
    "logits",
    "feature_map",
    "token_embedding",
    "patch_embedding",
)


@hookimpl
def keras_inspect_roles() -> tuple[str, ...]:
    return BUILTIN_ROLES
