"""Error responses in the CRM API's JSON shape."""

from http import HTTPStatus

from crm_assets.emulator.response import Response, json_response


class ApiError(Exception):
    """An error that the emulator sends as an HTTP status with the API's error body."""

    def __init__(
        self,
        status: int,
        name: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        return error_body(self.status, self.name, self.message)

    def response(self) -> Response:
        return json_response(self.status, self.body(), self.headers)


def error_body(status: int, name: str, message: str) -> dict:
    """Return the API's error body, e.g. for 404 with name "ERROR_NOT_FOUND"."""
    return {
        "success": False,
        "http_status": status,
        "code": status,
        "name": name,
        "message": message,
    }


def invalid_parameter(parameter: str, problem: str) -> ApiError:
    """Return a 400 ERROR_PARAMETER_INVALID error whose message starts with the parameter name."""
    return ApiError(400, "ERROR_PARAMETER_INVALID", f"Parameter '{parameter}' {problem}")


def not_found(message: str) -> ApiError:
    return ApiError(404, "ERROR_NOT_FOUND", message)


def status_error_name(status: int) -> str:
    """Return an error name such as ERROR_TOO_MANY_REQUESTS for an HTTP status."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "ERROR_SERVER"
    return "ERROR_" + phrase.upper().replace(" ", "_").replace("-", "_").replace("'", "")
