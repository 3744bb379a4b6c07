"""Salesforce's two error shapes, as exceptions the handlers raise.

Why two classes: Salesforce fails a *request* with an HTTP error status and a JSON array
``[{"message", "errorCode", "fields"?}]`` (what simple-salesforce turns into its exceptions),
but fails a *record* inside a collection or bulk job with ``{"statusCode", "message", "fields"}``
while the request itself answers 200. The same validation code runs for single-record and batch
writes, so it raises :class:`RecordError`; the single-record handlers convert that into a 400
request error, the batch handlers into a per-record result.
"""

from __future__ import annotations

from typing import Any

from sandbox.http import Response


class ApiError(Exception):
    """A whole request fails: ``status`` with Salesforce's error array."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]

    def response(self) -> Response:
        return Response(self.status, self.body())


class RecordError(Exception):
    """One record of a write fails (``statusCode`` form); ``status`` is used for single writes."""

    def __init__(
        self, code: str, message: str, fields: list[str] | None = None, status: int = 400
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = fields or []
        self.status = status

    def item(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def as_api_error(self) -> ApiError:
        return ApiError(self.status, self.code, self.message, self.fields)

    def bulk_text(self) -> str:
        """Bulk API 2.0's ``sf__Error`` column: ``CODE:message:fields --``."""
        return f"{self.code}:{self.message}:{','.join(self.fields)} --"


def not_found(message: str = "The requested resource does not exist") -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


def malformed_query(message: str) -> ApiError:
    return ApiError(400, "MALFORMED_QUERY", message)


def invalid_field(message: str) -> ApiError:
    return ApiError(400, "INVALID_FIELD", message)


def invalid_type(name: str) -> ApiError:
    return ApiError(
        400,
        "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names.",
    )


def json_parser_error(message: str) -> ApiError:
    return ApiError(400, "JSON_PARSER_ERROR", message)
