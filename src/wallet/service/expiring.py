"""Applying an expiry to a Book: what is left of an account's lots whose expiry has passed moves
from its user to the asset's ``expired`` account, in one transaction of type ``expiry`` for all
of them (at most LOT_EXPIRY_LOTS_MAX lots; the rest wait for the next pass), with one draw per
lot (service/lots.py has the rules; service/expiry.py is the sweep that submits these commands).
"""

from wallet.domain.ledger import EXPIRED, AccountRef, TransactionType, Transfer
from wallet.limits import LOT_EXPIRY_LOTS_MAX

from .book import Book
from .commands import ExpiryCommand, Outcome

# The answer to an expiry that found nothing to do: the account's due lots were spent, or
# expired already (another process's sweep came first).
NOTHING_TO_EXPIRE = Outcome(body=b"null")


def expiry_accounts(user_id: str, asset_code: str) -> tuple[AccountRef, AccountRef]:
    """The accounts an expiry moves funds between: the user's, and the asset's expired."""
    return AccountRef.user(user_id, asset_code), AccountRef.system(EXPIRED, asset_code)


def apply_expiry(book: Book, command: ExpiryCommand, scale: int, now_us: int) -> Outcome:
    """Expire what is left of the command's account's due lots, read under its lock: one
    ``expiry`` transaction of their sum (with its event, and any balance monitor it crosses),
    and a draw of each. Freezes and daily limits do not apply: the service does it, not the
    user.
    """
    user, expired = expiry_accounts(command.user_id, command.asset_code)
    due = book.lots.due(user, now_us, LOT_EXPIRY_LOTS_MAX)
    if not due:
        return NOTHING_TO_EXPIRE
    amount_minor = sum(lot.remaining_minor for lot in due)
    transaction = book.record(
        Transfer(debit=user, credit=expired, amount_minor=amount_minor),
        TransactionType.EXPIRY,
        command.user_id,
        scale,
        now_us,
        description="expiry of 1 lot" if len(due) == 1 else f"expiry of {len(due)} lots",
    )
    # The due lots are the first of the debit order: a debit of their sum takes each whole.
    taken = book.lots.debit(user, transaction.id, amount_minor)
    assert taken == amount_minor, f"the due lots of {user} were not expired whole"
    return Outcome(
        body=book.views[transaction.id],
        transaction_id=transaction.id,
        lots_expired=len(due),
        lots_capped=len(due) == LOT_EXPIRY_LOTS_MAX,
    )
