"""Ids of the rules the engine implements natively (declared, with severity and text, in rules/core.yaml)."""

UNREADABLE = "input:unreadable"
MALFORMED_JSON = "input:malformed-json"
NOT_A_RESOURCE = "input:not-a-resource"
BYTE_ORDER_MARK = "input:byte-order-mark"

MISSING_RESOURCE_TYPE = "json:missing-resourceType"
UNKNOWN_RESOURCE_TYPE = "json:unknown-resource-type"
DUPLICATE_KEY = "json:duplicate-key"
NULL = "json:null"
EMPTY_ARRAY = "json:empty-array"
EMPTY_OBJECT = "json:empty-object"
EMPTY_STRING = "json:empty-string"
ARRAY_EXPECTED = "json:array-expected"
ARRAY_UNEXPECTED = "json:array-unexpected"
UNKNOWN_PROPERTY = "json:unknown-property"
COMPANION = "json:companion"

UNSUPPORTED_RESOURCE_TYPE = "engine:unsupported-resource-type"
INVARIANT_NOT_EVALUATED = "engine:invariant-not-evaluated"
BINDING_NOT_CHECKED = "engine:binding-not-checked"
UNKNOWN_PROFILE = "engine:unknown-profile"
TARGET_NOT_CHECKED = "engine:target-not-checked"

NATIVE = frozenset(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str))
