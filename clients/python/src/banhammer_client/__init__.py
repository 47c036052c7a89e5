"""banhammer-client: a typed client for game servers (see README.md)."""

from .actions import ActionStream, Report
from .bans import BanCache, BanState
from .client import Client
from .connection import ClientCertificate
from .retry import Backoff
from .sync import SyncClient

__all__ = ["ActionStream", "Backoff", "BanCache", "BanState", "Client", "ClientCertificate", "Report", "SyncClient"]
