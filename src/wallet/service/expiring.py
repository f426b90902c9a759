"""Applying an expiry to a Book: what is left of a lot whose expiry has passed moves from its
user to the asset's ``expired`` account, in a transaction of type ``expiry`` (service/lots.py
has the rules; service/expiry.py is the sweep that submits these commands).
"""

from wallet.domain.ledger import EXPIRED, AccountRef, TransactionType, Transfer

from .book import Book
from .commands import ExpiryCommand, Outcome

# The answer to an expiry that found nothing to do: the lot was spent, given back to and
# expired already, or is not due (another process's sweep came first).
NOTHING_TO_EXPIRE = Outcome(body=b"null")


def expiry_accounts(user_id: str, asset_code: str) -> tuple[AccountRef, AccountRef]:
    """The accounts an expiry moves funds between: the user's, and the asset's expired."""
    return AccountRef.user(user_id, asset_code), AccountRef.system(EXPIRED, asset_code)


def apply_expiry(book: Book, command: ExpiryCommand, scale: int, now_us: int) -> Outcome:
    """Expire what is left of the command's lot, read under its account's lock: one ``expiry``
    transaction of that amount (with its event, and any balance monitor it crosses), and its
    draw. Freezes and daily limits do not apply: the service does it, not the user.
    """
    user, expired = expiry_accounts(command.user_id, command.asset_code)
    lot = book.lots.lot(user, command.lot_id)
    if lot is None or lot.remaining_minor == 0 or lot.expires_at_us > now_us:
        return NOTHING_TO_EXPIRE
    transaction = book.record(
        Transfer(debit=user, credit=expired, amount_minor=lot.remaining_minor),
        TransactionType.EXPIRY,
        command.user_id,
        scale,
        now_us,
        description=f"expiry of lot {lot.id}",
    )
    taken = book.lots.debit(user, transaction.id, lot.remaining_minor, first_lot=lot.id)
    assert taken == lot.remaining_minor, f"lot {lot.id} was not expired whole"
    return Outcome(body=book.views[transaction.id], transaction_id=transaction.id)
