"""Declared parameter constraints of learners and base models, and the one check of them.

A learner declares, once, what each of its parameters may be: a table
``_param_constraints`` mapping a parameter's name to a list of allowed
kinds (any of them will do), as scikit-learn's estimators do, plus a few
rules that relate parameters to each other (``_param_rules``). The names
differ from scikit-learn's ``_parameter_constraints`` on purpose: its private
``_validate_params`` reads that attribute in its own format. :func:`check_params` checks a
learner's parameters against its table; it builds nothing, so it is cheap
enough to run in every ``fit`` as well as once per config before any work.

The kinds:

* ``None``: the value None; :data:`OFF`: None as a default that turns a
  feature off, allowed but not offered in messages;
* :class:`Interval`: an integer or a real number within bounds;
* :class:`Options`: one of a few values (``True``/``False`` read "true or false");
* :class:`Registered`: a name of a fixed registry (base models, learners);
* :class:`FractionOrCount`: an integer >= 1 or a fraction of the patients, as
  scikit-learn's and scikit-survival's forests take ``min_samples_leaf`` and
  ``max_samples``;
* :class:`NonZeroInteger`: a thread count (``n_jobs``);
* :class:`Nested`: a mapping of parameters checked against another table
  (a learner's ``base_params`` against its base model's).

Every refusal is one line: ``<name> must be <what is allowed> (got <value>)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

from stratify.exceptions import StratifyInputError

__all__ = [
    "OFF",
    "FractionOrCount",
    "Interval",
    "Nested",
    "NonZeroInteger",
    "Options",
    "Registered",
    "Rule",
    "check_params",
    "check_value",
]


def _is_integer(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


class _Off:
    """None as a parameter's default that turns a feature off: allowed, not offered."""

    def allows(self, value) -> bool:
        return value is None

    def __repr__(self) -> str:
        return "OFF"


#: None meaning "off" (``time_grid``, ``max_bins``): allowed, but messages do not offer it.
OFF = _Off()


@dataclass(frozen=True)
class Interval:
    """A number within bounds.

    Parameters
    ----------
    kind : {numbers.Integral, numbers.Real}
        Integers only, or any real number (booleans are neither).
    low, high : float or None
        Bounds; None is unbounded.
    closed : {"both", "left", "right", "neither"}
        Which bounds are allowed values.

    Examples
    --------
    >>> Interval(Integral, 2, None).text
    'an integer >= 2'
    >>> Interval(Real, 0, 1, closed="right").text
    'a number in (0, 1]'
    """

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"

    def allows(self, value) -> bool:
        """Whether ``value`` is of the kind and within the bounds."""
        if not (_is_integer(value) if self.kind is Integral else _is_number(value)):
            return False
        if math.isnan(value):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not left)):
            return False
        return self.high is None or not (value > self.high or (value == self.high and not right))

    @property
    def text(self) -> str:
        """What the interval allows, in words."""
        noun = "an integer" if self.kind is Integral else "a number"
        if self.high is None and self.low is not None:
            return f"{noun} {'>=' if self.closed in ('both', 'left') else '>'} {self.low:g}"
        if self.low is None and self.high is not None:
            return f"{noun} {'<=' if self.closed in ('both', 'right') else '<'} {self.high:g}"
        if self.low is None:
            return noun
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        return f"{noun} in {left}{self.low:g}, {self.high:g}{right}"


@dataclass(frozen=True)
class Options:
    """One of a few values (compared by equality; booleans only match booleans).

    Examples
    --------
    >>> Options(("forest", "linear")).text
    "one of 'forest', 'linear'"
    >>> Options((True, False)).text
    'true or false'
    """

    values: tuple

    def allows(self, value) -> bool:
        """Whether ``value`` is one of the options."""
        try:
            hash(value)
        except TypeError:
            return False
        return any(
            isinstance(value, bool) == isinstance(v, bool) and value == v for v in self.values
        )

    @property
    def listed(self) -> str:
        """The options, as messages list them among other kinds."""
        if set(self.values) == {True, False} and all(isinstance(v, bool) for v in self.values):
            return "true or false"
        return ", ".join(repr(v) for v in self.values)

    @property
    def text(self) -> str:
        """The options, as messages list them alone."""
        if len(self.values) == 1 or self.listed == "true or false":
            return self.listed
        return f"one of {self.listed}"


@dataclass(frozen=True)
class Registered:
    """A name of a fixed registry, refused with the registry's valid names.

    Examples
    --------
    >>> check_value([Registered(("rsf", "coxph"), "base model")], "xgb", "base")
    Traceback (most recent call last):
    ...
    stratify.exceptions.StratifyInputError: unknown base model 'xgb'; valid base models: \
'rsf', 'coxph'
    """

    names: tuple
    noun: str

    def allows(self, value) -> bool:
        """Whether ``value`` is one of the registered names."""
        return isinstance(value, str) and value in self.names

    @property
    def text(self) -> str:
        """The registered names."""
        return "one of " + ", ".join(repr(v) for v in self.names)

    def refusal(self, value) -> str:
        """The one-line message refusing ``value``."""
        valid = ", ".join(repr(v) for v in self.names)
        return f"unknown {self.noun} {value!r}; valid {self.noun}s: {valid}"


@dataclass(frozen=True)
class FractionOrCount:
    """An integer of at least 1, or a fraction in (0, 1) (``one=True``: (0, 1]).

    Examples
    --------
    >>> FractionOrCount().allows(0.2), FractionOrCount().allows(1.0), FractionOrCount().allows(3)
    (True, False, True)
    """

    one: bool = False

    def allows(self, value) -> bool:
        """Whether ``value`` is a count or a fraction."""
        if _is_integer(value):
            return value >= 1
        return _is_number(value) and (0 < value < 1 or (self.one and value == 1))

    @property
    def text(self) -> str:
        """What is allowed, in words."""
        return f"an integer >= 1 or a fraction in (0, 1{']' if self.one else ')'}"


@dataclass(frozen=True)
class NonZeroInteger:
    """A thread count: a non-zero integer (-1: all cores, as joblib counts)."""

    def allows(self, value) -> bool:
        """Whether ``value`` is a non-zero integer."""
        return _is_integer(value) and value != 0

    text = "a non-zero integer (-1: all cores)"


@dataclass(frozen=True)
class Nested:
    """A mapping of parameters checked against the table another parameter chooses.

    Parameters
    ----------
    chooser : str
        The parameter whose value names the table (a learner's ``base``).
    tables : callable
        ``tables(choice)`` gives ``(label, table)``: how messages name the
        choice (e.g. ``"base model 'rsf'"``) and its constraints table, whose
        keys are all the parameters the choice takes (constraints ``None``:
        taken as they are). Unknown choices are the chooser's own constraint
        to refuse.
    refused : dict of str to str, optional
        Parameters the mapping may not set, with the reason.
    """

    chooser: str
    tables: Callable[[Any], tuple[str, Mapping[str, list | None]]]
    refused: Mapping[str, str] = field(default_factory=dict)

    def check(self, value, name: str, params: Mapping[str, Any]) -> None:
        """Refuse a non-mapping, an unknown or refused key, or a value its table refuses."""
        if value is None:
            return
        if not isinstance(value, Mapping):
            raise StratifyInputError(f"{name} must be a mapping (got {value!r})")
        label, table = self.tables(params[self.chooser])
        for key, item in value.items():
            if key in self.refused:
                raise StratifyInputError(f"{label}: {key} {self.refused[key]}")
            if key not in table:
                valid = ", ".join(sorted(table))
                raise StratifyInputError(
                    f"unknown parameter {key!r} for {label}; valid parameters: {valid}"
                )
            if table[key] is not None:
                try:
                    check_value(table[key], item, key)
                except StratifyInputError as err:
                    raise StratifyInputError(f"{label}: {err}") from None


@dataclass(frozen=True)
class Rule:
    """A condition relating parameters (checked after each one's own constraints).

    Parameters
    ----------
    holds : callable
        ``holds(params)``: True when the parameters are acceptable.
    message : str or callable
        The refusal, or ``message(params)`` giving it.
    """

    holds: Callable[[Mapping[str, Any]], bool]
    message: str | Callable[[Mapping[str, Any]], str]

    def check(self, params: Mapping[str, Any]) -> None:
        """Raise the rule's message unless it holds."""
        if not self.holds(params):
            text = self.message(params) if callable(self.message) else self.message
            raise StratifyInputError(text)


def _describe(kinds: Sequence) -> str:
    shown = [kind for kind in kinds if kind is not OFF]
    if len(shown) == 1:
        return "None" if shown[0] is None else shown[0].text
    parts = ["None" if kind is None else getattr(kind, "listed", kind.text) for kind in shown]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def check_value(kinds: Sequence, value, name: str):
    """Refuse ``value`` of parameter ``name`` unless one of ``kinds`` allows it.

    Parameters
    ----------
    kinds : list
        ``None``, :data:`OFF` and instances of the kinds of this module (not
        :class:`Nested`).
    value : object
        The value.
    name : str
        The parameter, as the message names it.

    Returns
    -------
    object
        ``value``.

    Raises
    ------
    StratifyInputError
        ``<name> must be <allowed> (got <value>)``.

    Examples
    --------
    >>> check_value([None, FractionOrCount(one=True)], 1.5, "max_samples")
    Traceback (most recent call last):
    ...
    stratify.exceptions.StratifyInputError: max_samples must be None or an integer >= 1 or \
a fraction in (0, 1] (got 1.5)
    """
    for kind in kinds:
        if (value is None) if kind is None else kind.allows(value):
            return value
    if len(kinds) == 1 and isinstance(kinds[0], Registered):
        raise StratifyInputError(kinds[0].refusal(value))
    raise StratifyInputError(f"{name} must be {_describe(kinds)} (got {value!r})")


def check_params(
    table: Mapping[str, list | Nested], params: Mapping[str, Any], rules: Sequence[Rule] = ()
) -> None:
    """Check parameters against a constraints table, then the rules, in the table's order.

    Parameters
    ----------
    table : dict
        Parameter name -> list of allowed kinds, or a :class:`Nested`.
        Parameters missing from the table are not checked.
    params : dict
        The parameters (``get_params(deep=False)``).
    rules : sequence of Rule
        Conditions relating parameters.

    Raises
    ------
    StratifyInputError
        The first refusal, one line naming the parameter.
    """
    for name, kinds in table.items():
        if isinstance(kinds, Nested):
            kinds.check(params[name], name, params)
        else:
            check_value(kinds, params[name], name)
    for rule in rules:
        rule.check(params)
