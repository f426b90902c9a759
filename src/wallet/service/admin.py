"""Administrative use cases for the command line: bring a database's schema up to date, seed it.

Both are idempotent: a second run changes nothing.
"""

from wallet.config import Settings
from wallet.storage import open_database

from .wallet import WalletService


def migrate_database(settings: Settings) -> None:
    """Apply every schema migration the database does not have yet."""
    database = open_database(settings)
    try:
        database.migrate()
    finally:
        database.close()


def seed_database(settings: Settings) -> None:
    """Migrate, then create the seed assets, treasuries and demo users where they are missing.

    The service's own start-up does the seeding; its idempotency keys make a second run a replay.
    """
    service = WalletService(settings.model_copy(update={"seed": True}))
    service.start()
    service.stop()
