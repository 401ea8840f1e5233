"""API errors carried as real `Status` objects (metav1.Status), as the apiserver sends them."""

from __future__ import annotations

from sandbox.kube.jsontypes import JSON


class ApiError(Exception):
    """An error the API answers with a `Status` body; `code` is the HTTP status."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> JSON:
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(resource: str, group: str) -> str:
    """`pods`, `deployments.apps`, `nodepools.karpenter.sh`: how messages name a resource."""
    return f"{resource}.{group}" if group else resource


def _details(name: str, resource: str, group: str) -> JSON:
    details: JSON = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return details


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found', _details(name, resource, group)
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        _details(name, resource, group),
    )


def conflict(resource: str, group: str, name: str) -> ApiError:
    # The exact sentence of the apiserver's storage.ErrCodeResourceVersionConflicts, which
    # client-go's retry.RetryOnConflict users and operators match on.
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        _details(name, resource, group),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unsupported_media_type(content_type: str) -> ApiError:
    # Same text as the apiserver's handlers/patch.go when a patch type is not accepted for the resource.
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        f" (got {content_type})",
    )


def invalid(kind: str, group: str, name: str, causes: list[JSON]) -> ApiError:
    """422 Invalid, message shaped like apimachinery's errors.NewInvalid: one cause inline, several in []."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    qualified_kind = f"{kind}.{group}" if group else kind
    details: JSON = {"name": name, "kind": kind, "causes": causes}
    if group:
        details["group"] = group
    return ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {summary}', details)


def field_error(reason: str, field: str, message: str) -> JSON:
    return {"reason": reason, "message": message, "field": field}


def forbidden(resource: str, group: str, name: str, message: str) -> ApiError:
    target = qualified(resource.split("/")[0], group)
    prefix = f'{target} "{name}"' if name else target
    details: JSON = {"kind": resource.split("/")[0]}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return ApiError(403, "Forbidden", f"{prefix} is forbidden: {message}", details)


def too_many_requests(message: str, retry_after: int, causes: list[JSON] | None = None) -> ApiError:
    """429; a positive retry_after becomes details.retryAfterSeconds and a Retry-After header, which
    client-go obeys by retrying the request itself (up to 10 times) before the caller sees the error."""
    details: JSON = {}
    headers: dict[str, str] = {}
    if retry_after > 0:
        details["retryAfterSeconds"] = retry_after
        headers["Retry-After"] = str(retry_after)
    if causes:
        details["causes"] = causes
    return ApiError(429, "TooManyRequests", message, details, headers)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")
