"""Test-run speed-ups that change nothing a test can observe.

Almost every test builds its own app, and werkzeug compiles two URL-builder functions (an
AST, then `compile()`) for each of the app's routes every time: about a third of building an
app. The builders depend only on the route's shape, so the run compiles each shape once.
"""

from werkzeug.routing.rules import Rule


def memoize_route_builders() -> None:
    """Share werkzeug's compiled URL builders between apps with the same routes."""
    compile_builder = Rule._compile_builder
    builders: dict[tuple, object] = {}

    def shared_builder(self: Rule, append_unknown: bool = True):
        defaults = self.defaults or {}
        # Everything `_compile_builder` reads: the parsed rule, its defaults (converted at
        # compile time by the converter of their part), and which builder is wanted.
        key = (self.rule, tuple(self._trace), append_unknown,
               tuple(sorted((name, repr(value), type(self._converters.get(name))) for name, value in defaults.items())))
        if key not in builders:
            builders[key] = compile_builder(self, append_unknown)
        return builders[key]

    Rule._compile_builder = shared_builder
