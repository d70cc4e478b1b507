"""vLLM's offline engine on recorded chat-completion bodies, timed; a helper of ``bench_vllm.py``.

Run as a script (``python _vllm_offline.py MODEL MAX_MODEL_LEN OUT.json WARM.jsonl TIMED.jsonl...``),
in its own process: vLLM starts its engine core with ``spawn``, which re-imports the main module,
and ``benchmarks/run_all.py`` has no ``__main__`` guard. Each line of the ``.jsonl`` files is one
request body as our policy sent it. The warm batch is run first (not timed), then each timed batch
in one ``LLM.chat`` call, as ``vllm/benchmarks/throughput.py`` (``vllm-chat`` backend) does; OUT.json
maps each timed file's stem to its figures.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path


def batch(path: Path):
    """Conversations and per-request ``SamplingParams`` of the bodies in ``path``."""
    from vllm import SamplingParams

    convs, params = [], []
    for line in path.read_text().splitlines():
        body = json.loads(line)
        if body.get("tools"):
            raise ValueError("the recorded requests offer tools: pass them to LLM.chat")
        convs.append(body["messages"])
        params.append(
            SamplingParams(
                temperature=body["temperature"],
                top_p=body["top_p"],
                max_tokens=body["max_tokens"],
                seed=body.get("seed"),
                ignore_eos=bool(body.get("ignore_eos")),
            )
        )
    return convs, params


def main() -> None:
    """Time ``LLM.chat`` on each timed batch; write the figures to OUT.json."""
    from vllm import LLM

    model, max_model_len, out, warm, *timed = sys.argv[1:]
    t = time.perf_counter()
    llm = LLM(  # the server's arguments (astroreason.models.serving.build_server_command)
        model=model,
        max_model_len=int(max_model_len),
        limit_mm_per_prompt={"image": 8, "video": 0},
        dtype="auto",
    )
    startup = time.perf_counter() - t
    llm.chat(*batch(Path(warm)), use_tqdm=False)
    results = {}
    for path in map(Path, timed):
        convs, params = batch(path)
        t = time.perf_counter()
        outs = llm.chat(convs, params, use_tqdm=False)
        wall = time.perf_counter() - t
        results[path.stem] = {
            "wall": wall,
            "startup": startup,
            "requests": len(outs),
            "prompt_tokens": sum(len(o.prompt_token_ids) for o in outs),
            "completion_tokens": sum(len(o.outputs[0].token_ids) for o in outs),
        }
        del outs
    del llm
    gc.collect()
    Path(out).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
