"""Kubernetes' own rules for values a definition passes into a Job: checked by `validate`, not by the API server.

A value the API server would refuse (a memory of "lots", a label key with a space) would otherwise fail
every attempt at run time; here it is a problem with its field path before anything is applied.
"""

from __future__ import annotations

import re

# resource.Quantity: a signed decimal with an optional binary or decimal suffix, or an exponent.
_QUANTITY = re.compile(r"[+]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
# An image reference: [registry[:port]/]path[:tag][@digest], lower-case path components.
_IMAGE = re.compile(r"[a-zA-Z0-9.-]+(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(/?[a-z0-9]+([._-]+[a-z0-9]+)*)"
                    r"(:[\w][\w.-]{0,127})?(@[A-Za-z][A-Za-z0-9]*:[0-9a-fA-F]{32,})?")


def quantity_problem(value: str) -> str | None:
    if _QUANTITY.fullmatch(value):
        return None
    return f'"{value}" is not a Kubernetes quantity (like 500m, 2, 512Mi or 1Gi)'


def dns_subdomain_problem(value: str) -> str | None:
    if len(value) <= 253 and _DNS_SUBDOMAIN.fullmatch(value):
        return None
    return f'"{value}" is not a valid Kubernetes name (lower-case letters, digits, "-" and ".", at most 253)'


def label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if (not prefix or dns_subdomain_problem(prefix) is None) and _LABEL_NAME.fullmatch(name):
        return None
    return f'"{key}" is not a valid label key (an optional DNS prefix and "/", then at most 63 letters, digits, ' \
           '"-", "_" or ".")'


def label_value_problem(value: str) -> str | None:
    if len(value) <= 63 and _LABEL_VALUE.fullmatch(value):
        return None
    return f'"{value}" is not a valid label value (at most 63 letters, digits, "-", "_" or ".")'


def env_name_problem(name: str) -> str | None:
    if _ENV_NAME.fullmatch(name):
        return None
    return f'"{name}" is not a valid environment variable name'


def image_problem(value: str) -> str | None:
    if len(value) <= 512 and _IMAGE.fullmatch(value):
        return None
    return f'"{value}" is not a container image reference (like registry.example.com/team/image:1.2)'
