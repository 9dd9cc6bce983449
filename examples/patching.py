"""Activation patching: which block, at which position, carries what makes run A differ from B.

Two prompts differ in one token. For each decoder block and each position, that block's output
at that position is taken from run A and put into run B (``ki.intervene(model, b, replace=...)``),
and the change of the logit of A's top next token is measured, as a fraction of the gap between
A and B: 1 where the patch carries all of it. Patching a block's whole output recovers A's logits
exactly (checked), and patching run B with its own values changes nothing (checked).

    python examples/patching.py [OUT_DIR]  # writes OUT_DIR/patching.png
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras_inspect as ki
from _transformers import causal_lm, figure, output_dir, prompt, report


def main() -> None:
    out = output_dir(__doc__.splitlines()[0])
    model = causal_lm()
    a = prompt(8, seed=1)
    b = {**a, "token_ids": a["token_ids"].copy()}
    b["token_ids"][0, 3] = (b["token_ids"][0, 3] + 1) % 64
    blocks = [e.name for e in ki.walk(model) if len(e.path) == 2 and "Decoder" in type(e.layer).__name__]
    logits_a, logits_b = (ops.convert_to_numpy(model(x)) for x in (a, b))
    unit = int(logits_a[0, -1].argmax())
    gap = logits_a[0, -1, unit] - logits_b[0, -1, unit]
    values_a = [ops.convert_to_numpy(v) for v in ki.expose(model, arguments=blocks, outputs=[])(a)]
    values_b = [ops.convert_to_numpy(v) for v in ki.expose(model, arguments=blocks, outputs=[])(b)]
    recovered = np.zeros((len(blocks), 8))
    for i, block in enumerate(blocks):
        for position in range(8):
            patch = values_b[i].copy()
            patch[:, position] = values_a[i][:, position]
            patched = ops.convert_to_numpy(ki.intervene(model, b, replace={block: patch}).outputs)
            recovered[i, position] = (patched[0, -1, unit] - logits_b[0, -1, unit]) / gap
    whole = ops.convert_to_numpy(ki.intervene(model, b, replace={blocks[-1]: values_a[-1]}).outputs)
    itself = ops.convert_to_numpy(ki.intervene(model, b, replace={blocks[0]: values_b[0]}).outputs)

    def draw(fig):  # type: ignore[no-untyped-def]
        axis = fig.add_subplot()
        shown = axis.imshow(recovered, cmap="RdBu", vmin=-1, vmax=1)
        axis.set_yticks(range(len(blocks)), [name.split("/")[-1] for name in blocks])
        axis.set_xlabel("position patched from run A (token 3 differs)")
        fig.colorbar(shown, label="fraction of the logit gap recovered")

    path = figure(out / "patching.png", draw, (8, 3))
    report(
        figure=path,
        whole_block_error=float(np.abs(whole - logits_a).max()),
        self_patch_error=float(np.abs(itself - logits_b).max()),
        last_block_last_position=float(recovered[-1, -1]),
    )


if __name__ == "__main__":
    main()
