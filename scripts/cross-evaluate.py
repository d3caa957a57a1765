#!/usr/bin/env python3
"""One checkpoint, two simulators: our Hopper-v4 against gymnasium's, on the same seeds.

`d4rl-run evaluate` rolls the policy out in our environment (episode i resets with seed i);
this script then rolls the same policy out in gymnasium's environment of the same id, reset
with the same seeds, acting through `d4rl-run act` (the same DecisionPolicy, over a pipe),
and compares the returns. The two engines draw reset noise from different generators, so
the episodes differ one by one; the means should agree within their standard errors.

Run by hand (the test suite never needs Python), with gymnasium and MuJoCo from PyPI:

    python3 -m venv /tmp/gymenv
    /tmp/gymenv/bin/pip install 'gymnasium[mujoco]==1.2.3' 'mujoco==4.0.1'
    /tmp/gymenv/bin/python scripts/cross-evaluate.py CHECKPOINT [--env Hopper-v4] [--episodes 100]

Prints one row per target and exits 1 when a mean differs by more than 2.5 standard errors.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np

try:
    import gymnasium as gym
except ImportError:
    sys.exit("cross-evaluate.py needs gymnasium with MuJoCo: pip install 'gymnasium[mujoco]==1.2.3' 'mujoco==4.0.1'")

# gymnasium warns that Hopper-v4 is not its newest version: it is the one D4RL's data is of.
warnings.filterwarnings("ignore", category=DeprecationWarning)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ours(binary, checkpoint, env, episodes, threads):
    """`d4rl-run evaluate --json`: the targets and every episode's return, in seed order."""
    done = subprocess.run(
        [binary, "evaluate", "--checkpoint", checkpoint, "--env", env, "--episodes", str(episodes),
         "--threads", str(threads), "--json"],
        capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"d4rl-run evaluate failed ({done.returncode}): {done.stderr.strip()}")
    out = done.stdout
    return [(report["target"], [e["episodeReturn"] for e in report["episodes"]])
            for report in json.loads(out)]


class Actor:
    """`d4rl-run act`: one request line in, one answer line out."""

    def __init__(self, binary, checkpoint, threads):
        self.process = subprocess.Popen(
            [binary, "act", "--checkpoint", checkpoint, "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def ask(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(f"d4rl-run act answered {answer!r} to {line[:60]!r}")
        return answer

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def theirs(actor, env_id, target, episodes):
    """gymnasium's episodes at `target`, reset with seeds 0, 1, ..."""
    env = gym.make(env_id)
    returns = []
    for seed in range(episodes):
        observation, _ = env.reset(seed=seed)
        actor.ask(f"reset {target!r}")
        total = 0.0
        while True:
            # float32, as our environments observe; repr reads back exactly.
            request = "act " + " ".join(repr(float(x)) for x in observation.astype(np.float32))
            action = np.array([float(x) for x in actor.ask(request).split()])
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
            actor.ask(f"reward {float(reward)!r}")
        returns.append(total)
    env.close()
    return returns


def summary(values):
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return mean, std, std / math.sqrt(max(len(values) - 1, 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--env", default="Hopper-v4", help="a gymnasium id both sides know (default Hopper-v4)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per target (seeds 0 ... N-1; default 100)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/d4rl-run"))
    args = parser.parse_args()
    if args.episodes < 2:
        sys.exit("--episodes must be at least 2 to estimate the noise")
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} is not there: build it with `swift build -c release --product d4rl-run`")

    print(f"{args.checkpoint} in {args.env}: {args.episodes} episodes per target, seeds 0...{args.episodes - 1}")
    print(f"gymnasium {gym.__version__}, mujoco {__import__('mujoco').__version__}")
    print(f"{'target':>8}  {'ours: return mean ± std':>24}  {'gymnasium: mean ± std':>22}  {'difference':>10}  {'in std errors':>13}")
    actor = Actor(args.binary, args.checkpoint, args.threads)
    agree = True
    try:
        for target, our_returns in ours(args.binary, args.checkpoint, args.env, args.episodes, args.threads):
            gym_returns = theirs(actor, args.env, target, args.episodes)
            (m1, s1, e1), (m2, s2, e2) = summary(our_returns), summary(gym_returns)
            z = (m1 - m2) / max(math.hypot(e1, e2), 1e-12)
            agree &= abs(z) <= 2.5
            print(f"{target:8.0f}  {m1:12.1f} ± {s1:9.1f}  {m2:10.1f} ± {s2:9.1f}  {m1 - m2:+10.1f}  {z:+13.2f}")
    finally:
        actor.close()
    print("within noise" if agree else "NOT within noise: a mean differs by more than 2.5 standard errors")
    sys.exit(0 if agree else 1)


if __name__ == "__main__":
    main()
