"""A small PromQL parser for the offline dashboard check: it accepts the language's
expressions (selectors with label matchers, range vectors and offsets, functions,
aggregations with by/without, binary operators with bool/on/ignoring/group_*,
numbers, strings, parentheses) and returns the metric names the expression selects.
It raises ``SyntaxError`` on anything it cannot read, so a typo fails the test."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"""
  (?P<ws>\s+)
 |(?P<duration>\[\s*\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\s*(?::\s*(?:\d+(?:ms|[smhdwy]))*\s*)?\])
 |(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0x[0-9a-fA-F]+|Inf|NaN)
 |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
 |(?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=,(){}])
 |(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
""", re.VERBOSE)
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
FUNCTIONS = {"abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes",
             "clamp", "clamp_max", "clamp_min", "count_over_time", "day_of_month",
             "day_of_week", "delta", "deriv", "exp", "floor", "histogram_quantile",
             "holt_winters", "hour", "idelta", "increase", "irate", "label_join",
             "label_replace", "last_over_time", "ln", "log10", "log2", "max_over_time",
             "min_over_time", "minute", "month", "predict_linear", "quantile_over_time",
             "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt",
             "stddev_over_time", "stdvar_over_time", "sum_over_time", "time", "timestamp",
             "vector", "year"}
BINARY = {"+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or",
          "unless", "atan2"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "offset", "and", "or", "unless"}


def tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SyntaxError(f"unexpected {text[pos:pos + 10]!r} at {pos}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.t = tokens(text)
        self.i = 0
        self.metrics: set[str] = set()

    def peek(self) -> str | None:
        return self.t[self.i][1] if self.i < len(self.t) else None

    def kind(self) -> str | None:
        return self.t[self.i][0] if self.i < len(self.t) else None

    def take(self, want: str | None = None) -> str:
        if self.i >= len(self.t):
            raise SyntaxError("unexpected end")
        value = self.t[self.i][1]
        if want is not None and value != want:
            raise SyntaxError(f"expected {want!r}, got {value!r}")
        self.i += 1
        return value

    def parse(self) -> set[str]:
        self.expr()
        if self.i != len(self.t):
            raise SyntaxError(f"trailing {self.peek()!r}")
        return self.metrics

    def expr(self) -> None:
        self.unary()
        while self.peek() in BINARY:
            self.take()
            if self.peek() == "bool":
                self.take()
            if self.peek() in ("on", "ignoring"):
                self.take()
                self.labels()
            if self.peek() in ("group_left", "group_right"):
                self.take()
                if self.peek() == "(":
                    self.labels()
            self.unary()

    def unary(self) -> None:
        if self.peek() in ("-", "+"):
            self.take()
        self.primary()
        if self.kind() == "duration":
            self.take()
        if self.peek() == "offset":
            self.take()
            if self.peek() == "-":
                self.take()
            if not re.fullmatch(r"\d+(?:ms|[smhdwy])", self.peek() or ""):
                # durations outside brackets tokenize as number + ident
                self.take()
                if self.kind() == "ident":
                    self.take()
            else:
                self.take()

    def labels(self) -> None:
        self.take("(")
        while self.peek() != ")":
            if self.kind() != "ident":
                raise SyntaxError(f"label name expected, got {self.peek()!r}")
            self.take()
            if self.peek() == ",":
                self.take()
        self.take(")")

    def matchers(self) -> None:
        self.take("{")
        while self.peek() != "}":
            if self.kind() != "ident":
                raise SyntaxError(f"label name expected, got {self.peek()!r}")
            self.take()
            if self.peek() not in ("=", "!=", "=~", "!~"):
                raise SyntaxError(f"label matcher expected, got {self.peek()!r}")
            self.take()
            if self.kind() != "string":
                raise SyntaxError("label value must be a string")
            self.take()
            if self.peek() == ",":
                self.take()
        self.take("}")

    def args(self) -> None:
        self.take("(")
        while self.peek() != ")":
            self.expr()
            if self.peek() == ",":
                self.take()
            elif self.peek() != ")":
                raise SyntaxError(f"',' or ')' expected, got {self.peek()!r}")
        self.take(")")

    def primary(self) -> None:
        kind, value = (self.kind(), self.peek())
        if value == "(":
            self.take()
            self.expr()
            self.take(")")
        elif kind in ("number", "string"):
            self.take()
        elif value == "{":
            self.matchers()
        elif kind == "ident" and value in AGGREGATIONS:
            self.take()
            if self.peek() in ("by", "without"):
                self.take()
                self.labels()
            self.args()
            if self.peek() in ("by", "without"):
                self.take()
                self.labels()
        elif kind == "ident" and value in FUNCTIONS and self.t[self.i + 1:self.i + 2] == [
                ("op", "(")]:
            self.take()
            self.args()
        elif kind == "ident" and value not in KEYWORDS:
            self.metrics.add(self.take())
            if self.peek() == "{":
                self.matchers()
        else:
            raise SyntaxError(f"unexpected {value!r}")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects; ``SyntaxError`` when it does not parse."""
    return _Parser(expr).parse()
