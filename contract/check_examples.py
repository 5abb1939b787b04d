"""Checks that every example in an OpenAPI 3.1 document is valid against the schema it illustrates.

    python contract/check_examples.py target/contract/openapi.json

Examples are found where the specification puts them: `example` and `examples` (a list) in a
Schema Object, and `example` and `examples` (a map of Example Objects, or $refs to
#/components/examples) beside the `schema` of a Parameter, a Header or a Media Type. Each one is
validated with openapi-schema-validator's OAS 3.1 validator and its format checker (date-time,
uuid, ...), against the schema as it stands in the document, so `$ref`s resolve within it.
Exits 1 listing every example that does not validate; prints the count either way.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from openapi_schema_validator import OAS31Validator, oas31_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:todo:openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Keywords whose value is a schema, a list of schemas or a map of schemas (JSON Schema 2020-12).
SCHEMA_KEYWORDS = (
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "items",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
)
SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties", "$defs", "dependentSchemas")


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class Checker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry = Registry().with_resource(DOCUMENT_URI, resource)
        self.checked = 0
        self.failures: list[str] = []

    def resolve(self, node: Any) -> tuple[Any, str | None]:
        """Follows a local $ref (of a parameter, header, example...) to what it names."""
        pointer = None
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            pointer = node["$ref"][1:]
            node = self.document
            for token in pointer.lstrip("/").split("/"):
                node = node[token.replace("~1", "/").replace("~0", "~")]
        return node, pointer

    def validate(self, value: Any, schema_pointer: str, where: str) -> None:
        self.checked += 1
        validator = OAS31Validator(
            {"$ref": f"{DOCUMENT_URI}#{schema_pointer}"},
            registry=self.registry,
            format_checker=oas31_format_checker,
        )
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        for error in errors:
            at = "".join(f"[{p!r}]" for p in error.absolute_path) or "the value"
            self.failures.append(f"{where}: {at}: {error.message}")

    # -- schemas ----------------------------------------------------------------------------

    def schema(self, node: Any, pointer: str) -> None:
        if not isinstance(node, dict):
            return
        if "example" in node:
            self.validate(node["example"], pointer, f"#{pointer}/example")
        if isinstance(node.get("examples"), list):
            for i, value in enumerate(node["examples"]):
                self.validate(value, pointer, f"#{pointer}/examples/{i}")
        for key in SCHEMA_KEYWORDS:
            if isinstance(node.get(key), dict):
                self.schema(node[key], f"{pointer}/{key}")
        for key in SCHEMA_LIST_KEYWORDS:
            if isinstance(node.get(key), list):
                for i, sub in enumerate(node[key]):
                    self.schema(sub, f"{pointer}/{key}/{i}")
        for key in SCHEMA_MAP_KEYWORDS:
            if isinstance(node.get(key), dict):
                for name, sub in node[key].items():
                    self.schema(sub, f"{pointer}/{key}/{escape(name)}")

    # -- the places that carry a schema and examples beside it --------------------------------

    def with_examples(self, node: Any, pointer: str) -> None:
        """A Parameter, Header or Media Type: its schema, and its examples checked against it."""
        node, target = self.resolve(node)
        if target is not None:
            return  # a component: checked where it is defined
        if not isinstance(node, dict):
            return
        if "schema" in node:
            schema_pointer = f"{pointer}/schema"
            self.schema(node["schema"], schema_pointer)
            if "example" in node:
                self.validate(node["example"], schema_pointer, f"#{pointer}/example")
            for name, example in (node.get("examples") or {}).items():
                example, _ = self.resolve(example)
                if isinstance(example, dict) and "value" in example:
                    self.validate(example["value"], schema_pointer, f"#{pointer}/examples/{escape(name)}")
        for media, content in (node.get("content") or {}).items():
            self.with_examples(content, f"{pointer}/content/{escape(media)}")
        for name, header in (node.get("headers") or {}).items():
            self.with_examples(header, f"{pointer}/headers/{escape(name)}")

    def body_or_response(self, node: Any, pointer: str) -> None:
        node, target = self.resolve(node)
        if target is not None or not isinstance(node, dict):
            return
        for name, header in (node.get("headers") or {}).items():
            self.with_examples(header, f"{pointer}/headers/{escape(name)}")
        for media, content in (node.get("content") or {}).items():
            self.with_examples(content, f"{pointer}/content/{escape(media)}")

    def path_item(self, item: Any, pointer: str) -> None:
        item, target = self.resolve(item)
        if target is not None or not isinstance(item, dict):
            return
        for i, parameter in enumerate(item.get("parameters") or []):
            self.with_examples(parameter, f"{pointer}/parameters/{i}")
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            at = f"{pointer}/{method}"
            for i, parameter in enumerate(operation.get("parameters") or []):
                self.with_examples(parameter, f"{at}/parameters/{i}")
            if "requestBody" in operation:
                self.body_or_response(operation["requestBody"], f"{at}/requestBody")
            for status, response in (operation.get("responses") or {}).items():
                self.body_or_response(response, f"{at}/responses/{escape(status)}")

    def run(self) -> None:
        for path, item in (self.document.get("paths") or {}).items():
            self.path_item(item, f"/paths/{escape(path)}")
        for name, item in (self.document.get("webhooks") or {}).items():
            self.path_item(item, f"/webhooks/{escape(name)}")
        components = self.document.get("components") or {}
        for name, schema in (components.get("schemas") or {}).items():
            self.schema(schema, f"/components/schemas/{escape(name)}")
        for kind in ("parameters", "headers"):
            for name, node in (components.get(kind) or {}).items():
                self.with_examples(node, f"/components/{kind}/{escape(name)}")
        for kind in ("requestBodies", "responses"):
            for name, node in (components.get(kind) or {}).items():
                self.body_or_response(node, f"/components/{kind}/{escape(name)}")
        for name, item in (components.get("pathItems") or {}).items():
            self.path_item(item, f"/components/pathItems/{escape(name)}")


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        checker = Checker(json.load(f))
    checker.run()
    if checker.failures:
        print(f"{len(checker.failures)} problem(s) in {checker.checked} example(s):")
        for failure in checker.failures:
            print(f"  {failure}")
        return 1
    print(f"{checker.checked} example(s), all valid against their schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
