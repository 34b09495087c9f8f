"""The benchmark (`make bench`): the Vault against the stack's floor and the bare fake upstream.

bench.run orchestrates; bench.targets starts the fake upstream, the floor and the Vault;
bench.load drives wrk (bench/post.lua) and the stream client (bench.streams); bench.processes
pins, measures and stops child processes; bench.database seeds PostgreSQL; bench.report writes
the tables.
"""
