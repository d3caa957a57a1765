#!/usr/bin/env python3
"""Times a training step of PyTorch Decision Transformers beside `d4rl-run bench model`.

The machines this runs on are shared and their speed drifts, so the two sides are timed
alternately in one invocation, round after round, and the ratios are taken within a round.

PyTorch side (CPU, float32, the same threads as ours), batch 64, K 20, S 11, A 3, C 128,
3 layers, 1 head, MLP 512, ReLU, dropout 0.1: forward, masked MSE of the actions, backward,
clip_grad_norm_(0.25) and an AdamW step.
- `torch-softmax`: the Decision Transformer (GPT-2 pre-LN blocks with causal softmax
  attention), written here with torch.nn modules.
- `torch-flow`: the same trunk with causal Flow-Attention computed as Flowformer_RL does it:
  the (L, D, D) cumulative sum of k ⊗ v.
- `reference-flow` (with --reference DIR, a checkout of thuml/Flowformer's Flowformer_RL
  folder): the reference Decision-Flowformer itself, if its imports load with the installed
  transformers; otherwise the script says why and goes on.

Needs: pip install torch (and transformers for --reference).
Usage: python3 scripts/bench-pytorch.py [--d4rl-run .build/release/d4rl-run] [--rounds 3]
"""

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """A GPT-2 pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, width, heads, dropout, flow):
        super().__init__()
        self.heads = heads
        self.flow = flow
        self.ln_1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln_2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width)
        self.fc_proj = nn.Linear(4 * width, width)
        self.drop = nn.Dropout(dropout)

    def softmax_attention(self, q, k, v, key_mask):
        length = q.shape[2]
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
        causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=q.device))
        scores = torch.where(causal, scores, torch.full_like(scores, -1e4))
        scores = scores + (1.0 - key_mask[:, None, None, :]) * -1e4
        return self.drop(scores.softmax(-1)) @ v

    def flow_attention(self, q, k, v, eps=1e-6):
        q, k = torch.sigmoid(q), torch.sigmoid(k)
        n = torch.arange(1, q.shape[2] + 1, dtype=q.dtype, device=q.device)[None, None, :]
        incoming = n / torch.einsum("bhld,bhld->bhl", q + eps, k.cumsum(2) + eps)
        outgoing = n / torch.einsum("bhld,bhld->bhl", k + eps, q.cumsum(2) + eps)
        sink = torch.einsum("bhld,bhld->bhl", q + eps, (k * outgoing[..., None]).cumsum(2) + eps) / n
        source = torch.einsum("bhld,bhld->bhl", k + eps, (q * incoming[..., None]).cumsum(2) + eps) / n
        allocation = torch.sigmoid(sink)
        source = torch.exp(source.clamp(-10, 10))
        competition = source / source.cumsum(-1) * n
        # The causal dot product through the (L, D, D) running sum of outer products.
        state = torch.einsum("bhld,bhlm->bhldm", k, v * competition[..., None]).cumsum(2)
        return torch.einsum("bhld,bhldm->bhlm", q * (incoming / n)[..., None], state) * allocation[..., None]

    def forward(self, x, key_mask):
        batch, length, width = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(width, dim=-1)
        q, k, v = (t.view(batch, length, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        y = self.flow_attention(q, k, v) if self.flow else self.softmax_attention(q, k, v, key_mask)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(batch, length, width)))
        return x + self.drop(self.fc_proj(F.relu(self.fc(self.ln_2(x)))))


class DecisionTransformer(nn.Module):
    """(return-to-go, state, action) tokens with timestep embeddings, a GPT-2 trunk, and the
    action predicted from each state token through tanh."""

    def __init__(self, state_dim, act_dim, width, layers, heads, max_ep_len, dropout, flow):
        super().__init__()
        self.embed_timestep = nn.Embedding(max_ep_len, width)
        self.embed_return = nn.Linear(1, width)
        self.embed_state = nn.Linear(state_dim, width)
        self.embed_action = nn.Linear(act_dim, width)
        self.embed_ln = nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(width, heads, dropout, flow) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        self.predict_action = nn.Linear(width, act_dim)

    def forward(self, states, actions, returns_to_go, timesteps, mask):
        batch, steps = states.shape[:2]
        time = self.embed_timestep(timesteps)
        tokens = torch.stack(
            (self.embed_return(returns_to_go) + time, self.embed_state(states) + time, self.embed_action(actions) + time),
            dim=2,
        ).reshape(batch, 3 * steps, -1)
        key_mask = mask.repeat_interleave(3, dim=1)
        x = self.drop(self.embed_ln(tokens))
        for block in self.blocks:
            x = block(x, key_mask)
        x = self.ln_f(x).reshape(batch, steps, 3, -1)
        return torch.tanh(self.predict_action(x[:, :, 1]))


def time_training(model, batch, steps, warmup):
    """Median milliseconds of a full training step."""
    states, actions, returns_to_go, timesteps, mask, call = batch
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    model.train()
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        predictions = call(model, states, actions, returns_to_go, timesteps, mask)
        loss = (((predictions - actions) ** 2).mean(-1) * mask).sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        if step >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def make_batch(batch, K, S, A):
    generator = torch.Generator().manual_seed(2)
    states = torch.randn(batch, K, S, generator=generator)
    actions = torch.rand(batch, K, A, generator=generator) * 2 - 1
    returns_to_go = torch.rand(batch, K, 1, generator=generator) * 3
    timesteps = torch.arange(K).repeat(batch, 1)
    mask = torch.ones(batch, K)
    return states, actions, returns_to_go, timesteps, mask


def reference_models(directory, S, A, K):
    """The reference Flowformer_RL model (its trunk always uses Flow-Attention), or why not."""
    sys.path.insert(0, os.path.abspath(directory))
    try:
        from decision_transformer.models.decision_transformer import DecisionTransformer as Reference
    except Exception as error:  # noqa: BLE001 - any import failure means: skip, with the reason
        return {}, f"{type(error).__name__}: {error}"
    try:
        model = Reference(
            state_dim=S, act_dim=A, hidden_size=128, max_length=K, max_ep_len=1000, action_tanh=True,
            n_layer=3, n_head=1, n_inner=512, activation_function="relu", n_positions=1024,
            resid_pdrop=0.1, attn_pdrop=0.1,
        )
    except Exception as error:  # noqa: BLE001
        return {}, f"{type(error).__name__}: {error}"
    return {"reference-flow": model}, None


def ours(binary, steps, threads):
    """ms/step of dt-default and softmax from `d4rl-run bench model`."""
    output = subprocess.run(
        [binary, "bench", "model", "--configs", "dt-default,softmax", "--steps", str(steps), "--threads", str(threads)],
        check=True, capture_output=True, text=True,
    ).stdout
    result = {}
    for line in output.splitlines():
        match = re.match(r"^(dt-default|softmax)\s+([0-9.]+)", line)
        if match:
            result["ours-" + match.group(1)] = float(match.group(2))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d4rl-run", default=".build/release/d4rl-run", help="the d4rl-run binary (release build)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per measurement")
    parser.add_argument("--threads", type=int, default=2, help="threads on both sides")
    parser.add_argument(
        "--flow-steps", type=int, default=2,
        help="timed steps (after one warm-up) for the cumsum-form flow models, which take seconds a step")
    parser.add_argument("--reference", help="a checkout of thuml/Flowformer's Flowformer_RL folder")
    args = parser.parse_args()
    if args.rounds < 1 or args.steps < 1 or args.flow_steps < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--rounds, --steps and --flow-steps must be at least 1, --warmup at least 0, --threads at least 1")
    if not os.access(args.d4rl_run, os.X_OK):
        parser.error(f"--d4rl-run {args.d4rl_run} is not an executable; build it with: swift build -c release")

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    B, K, S, A = 64, 20, 11, 3
    states, actions, returns_to_go, timesteps, mask = make_batch(B, K, S, A)

    def ours_call(model, s, a, r, t, m):
        return model(s, a, r, t, m)

    def reference_call(model, s, a, r, t, m):
        return model(s, a, None, r, t, attention_mask=m)[1]

    models = {
        "torch-softmax": (DecisionTransformer(S, A, 128, 3, 1, 1000, 0.1, flow=False), ours_call),
        "torch-flow": (DecisionTransformer(S, A, 128, 3, 1, 1000, 0.1, flow=True), ours_call),
    }
    if args.reference:
        found, problem = reference_models(args.reference, S, A, K)
        for name, model in found.items():
            models[name] = (model, reference_call)
        if problem:
            print(f"reference: skipped ({problem})")

    print(f"date {datetime.date.today()}; {platform.node()}: {os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    print(f"torch {torch.__version__}, {args.threads} threads; batch {B}, K {K}, C 128, 3 layers, 1 head")
    rounds = []
    for index in range(args.rounds):
        row = {}
        for name, (model, call) in models.items():
            slow = name.endswith("flow")
            row[name] = time_training(
                model, (states, actions, returns_to_go, timesteps, mask, call),
                args.flow_steps if slow else args.steps, 1 if slow else args.warmup)
        row.update(ours(args.d4rl_run, args.steps, args.threads))
        rounds.append(row)
        print(f"round {index + 1}: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in row.items()))

    print("\nms per training step (median over rounds) and ratios within each round:")
    for name in rounds[0]:
        print(f"  {name:18s} {statistics.median(r[name] for r in rounds):8.1f} ms")
    for baseline in ("torch-softmax", "torch-flow", "reference-flow"):
        if baseline not in rounds[0]:
            continue
        for mine in ("ours-dt-default", "ours-softmax"):
            if mine not in rounds[0]:
                continue
            ratios = [r[baseline] / r[mine] for r in rounds]
            print(
                f"  {baseline} / {mine}: {statistics.median(ratios):.2f}× "
                f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
            )


if __name__ == "__main__":
    main()
