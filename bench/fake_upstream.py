"""The fake Gemini upstream as a process of its own (one thread per connection), for benchmarks.

Prints its base URL on the first line of stdout and serves until stdin closes. Besides the
catalog it serves two models: `bench-stream` (5 chunks, `--chunk-delay` apart) and
`bench-hold` (a first chunk, then `--hold` seconds of silence, then the rest).
"""

import argparse
import sys

from tests.fake_gemini import FakeGemini, Reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunk-delay", type=float, default=0.02)
    parser.add_argument("--hold", type=float, default=10.0)
    args = parser.parse_args()
    fake = FakeGemini().start()
    for model in ("bench-stream", "bench-hold"):
        fake.add_model(model)
    fake.enqueue(Reply(chunk_texts=["one ", "two ", "three ", "four ", "five"], chunk_delay=args.chunk_delay),
                 model="bench-stream", times=None)
    fake.enqueue(Reply(chunk_texts=["held ", "open"], chunk_delay=args.hold), model="bench-hold", times=None)
    print(fake.base_url, flush=True)
    sys.stdin.read()
    fake.stop()


if __name__ == "__main__":
    main()
