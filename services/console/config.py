"""The console's settings, from the environment (parsed in ``main()``)."""

from dataclasses import dataclass

from services.runtime import env


@dataclass(frozen=True)
class ConsoleConfig:
    host: str = env("CONSOLE_HOST", "0.0.0.0", doc="Address the console's HTTP server binds")
    port: int = env("CONSOLE_PORT", 8090, doc="HTTP port (the gateway routes /console/ here)")
    gateway_addr: str = env("CONSOLE_GATEWAY_ADDR", "127.0.0.1:8000",
                            doc="host:port of the gateway; every call goes there with the signed-in caller's token")
    service_token_file: str = env("CONSOLE_SERVICE_TOKEN_FILE", "",
                                  doc="File holding a `service` token, used only for energy password sign-in (Authenticate) and to end a session at sign-out")
    service_token: str = env("CONSOLE_SERVICE_TOKEN", "",
                             doc="The same token given directly (the file wins when both are set); empty: admin sign-in only")
    static_dir: str = env("CONSOLE_STATIC_DIR", "", doc="Built single-page app (default: build/console)")
    secure_cookies: bool = env("CONSOLE_SECURE_COOKIES", False, doc="Mark cookies Secure (serve over HTTPS)")
    identity_cache_seconds: float = env("CONSOLE_IDENTITY_CACHE_SECONDS", 5.0,
                                        doc="How long who a session is (role, subject) is reused before asking again")
    log_level: str = env("LOG_LEVEL", "INFO", doc="Log level (JSON logs on stderr)")
    otlp_endpoint: str = env("OTEL_EXPORTER_OTLP_ENDPOINT", "", doc="OTLP/gRPC collector for traces (unset: no export)")
    call_timeout_seconds: float = env("CONSOLE_CALL_TIMEOUT_SECONDS", 10.0, doc="Deadline of one call to the gateway")
