"""A local transformers model as the teacher (greedy decoding through its chat template)."""

from __future__ import annotations

import asyncio
import threading
import time

from teacher.backends.base import Backend
from teacher.records import RawReply, TeacherRequest


class HFBackend(Backend):
    """Runs a causal LM from a local folder or hub id. Images are not sent (text-only teachers); the prompt
    asks for JSON and replies are parsed like any other backend's."""

    name = "hf"

    def __init__(self, model: str, max_new_tokens: int = 512, device: str | None = None):
        super().__init__(model)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.lm = AutoModelForCausalLM.from_pretrained(model)
        if device:
            self.lm.to(device)
        self.lm.eval()
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()

    def _generate(self, request: TeacherRequest, followup: tuple[tuple[str, str], ...]) -> RawReply:
        import torch

        start = time.perf_counter()
        messages = [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.user_text},
        ]
        messages += [{"role": r, "content": t} for r, t in followup]
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.lm.device)
        with self._lock, torch.no_grad():
            out = self.lm.generate(
                **ids,
                max_new_tokens=min(self.max_new_tokens, request.params.get("max_tokens", 512)),
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new = out[0, ids["input_ids"].shape[1] :]
        return RawReply(
            text=self.tokenizer.decode(new, skip_special_tokens=True),
            input_tokens=int(ids["input_ids"].shape[1]),
            output_tokens=int(new.shape[0]),
            model=self.model,
            latency_s=time.perf_counter() - start,
        )

    async def complete(self, request: TeacherRequest, followup: tuple[tuple[str, str], ...] = ()) -> RawReply:
        return await asyncio.to_thread(self._generate, request, followup)
