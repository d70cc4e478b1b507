"""A policy that generates locally with transformers (small models, debugging, no server).

Requests from concurrent episodes are gathered into batches (up to ``batch_size``, waiting at most
``max_wait_ms`` for company) and generated together with left padding in a worker thread, so the
rollout runner's concurrency turns into batched ``generate`` calls.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from astroreason.chat import to_chat
from astroreason.images import to_pil
from astroreason.models.pixels import PixelLimits, apply_to_processor, local_folder
from astroreason.policies.base import Policy, PolicyReply
from astroreason.policies.openai_chat import SamplingConfig


def to_hf_messages(messages: list[dict[str, Any]]) -> tuple[list[dict], list]:
    """The environment's messages for a processor's chat template, and their images in order."""
    images: list = []

    def block(image: Any) -> dict[str, Any]:
        images.append(to_pil(image))
        return {"type": "image", "image": images[-1]}

    return to_chat(messages, block), images


class TransformersPolicy(Policy):
    """Batched local generation with a Hugging Face image-text-to-text model."""

    def __init__(
        self,
        model: str,
        *,
        sampling: SamplingConfig | None = None,
        batch_size: int = 8,
        max_wait_ms: float = 5.0,
        device: str = "cpu",
        pixel_limits: PixelLimits | None = None,
    ):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.name = f"transformers:{model}"
        self.sampling = sampling or SamplingConfig()
        self.batch_size = batch_size
        self.max_wait_s = max_wait_ms / 1000
        local_folder(model)  # a missing folder or uncached id: one line, before transformers tries
        # The same limits as training and vLLM: no view is up- or downscaled behind our back.
        self.processor = apply_to_processor(
            AutoProcessor.from_pretrained(model), pixel_limits or PixelLimits()
        )
        self.processor.tokenizer.padding_side = "left"
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # "Loading weights" for a few MB: noise on the terminal
        try:
            self.model = AutoModelForImageTextToText.from_pretrained(model, dtype=torch.float32)
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self.model.to(device).eval()
        self.device = device
        self._queue: asyncio.Queue | None = None
        self._loop_task: asyncio.Task | None = None

    async def act(self, info: dict[str, Any]) -> PolicyReply:
        """Queue the request; the batching loop answers it."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._loop_task = asyncio.create_task(self._batch_loop())
        fut = asyncio.get_running_loop().create_future()
        await self._queue.put((info, fut))
        return await fut

    async def _batch_loop(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            deadline = time.perf_counter() + self.max_wait_s
            while len(batch) < self.batch_size:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except asyncio.TimeoutError:
                    break
            try:
                replies = await asyncio.to_thread(self.generate, [info for info, _ in batch])
            except Exception as e:  # hand the failure to every waiting episode
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for (_, fut), reply in zip(batch, replies, strict=True):
                if not fut.done():
                    fut.set_result(reply)

    def generate(self, infos: list[dict[str, Any]]) -> list[PolicyReply]:
        """Generate one reply per conversation, batched."""
        import torch

        t0 = time.perf_counter()
        texts, images = [], []
        for info in infos:
            msgs, imgs = to_hf_messages(info["messages"])
            texts.append(
                self.processor.apply_chat_template(
                    msgs,
                    tools=info.get("tools") or None,
                    add_generation_prompt=True,
                    tokenize=False,
                )
            )
            images.extend(imgs)
        inputs = self.processor(
            text=texts, images=images or None, padding=True, return_tensors="pt"
        ).to(self.device)
        s = self.sampling
        gen_kwargs: dict[str, Any] = dict(max_new_tokens=s.max_tokens)
        if s.temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        else:
            gen_kwargs.update(do_sample=False)
        with torch.no_grad():
            out = self.model.generate(**inputs, **gen_kwargs)
        n_prompt = inputs["input_ids"].shape[1]
        new = out[:, n_prompt:]
        pad = self.processor.tokenizer.pad_token_id
        latency = time.perf_counter() - t0
        replies = []
        for i in range(len(infos)):
            ids = [int(t) for t in new[i].tolist() if t != pad]
            text = self.processor.tokenizer.decode(ids, skip_special_tokens=True)
            replies.append(
                PolicyReply(
                    text=text,
                    prompt_tokens=int(inputs["attention_mask"][i].sum()),
                    completion_tokens=len(ids),
                    token_ids=ids,
                    latency_s=latency,
                )
            )
        return replies

    async def aclose(self) -> None:
        """Stop the batching loop."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            self._loop_task = None
            self._queue = None
