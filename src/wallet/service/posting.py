"""One unit of work's worth of postings: the ledger rules applied to a group of commands.

The writer calls ``apply_commands`` inside a unit of work it has begun, and commits after it
returns. Commands are applied in order, each against the balances that the ones before it left,
so a command that the ledger refuses (insufficient funds, an unknown user, a reused key) is
refused alone and never spoils its neighbours. Idempotency is decided here too: a key seen
before, in an earlier commit or earlier in this group, gets the outcome it got then.

A command is a posting (top-up, bonus, purchase, refund), a batch of postings (applied
together, all or none: the Book is marked before it and restored if an item fails, and nothing
is written until the whole group is decided, so no savepoint is needed), a hold command, or the
expiry of an account's due lots (service/expiring.py). What each command does to lots
(service/lots.py) is kept in the Book with the rest, and written with it.

Concurrency across processes (PostgreSQL): a unit of work locks, in this order and each kind in
id order, the holds it settles, the transactions it refunds, then the accounts it moves. Locking
a refunded original (rows that never change, so the lock is a pure mutex) serialises its
refunds; we chose it over a separate running-total table because the refunded total is then
always the sum of the refunds themselves, and the schema's trigger checks that sum on insert.
Within a process the single writer thread serialises everything anyway.
"""

from collections.abc import Iterable, Mapping, Sequence

import orjson

from wallet.domain.errors import (
    BatchFailed,
    IdempotencyKeyReused,
    TransactionNotFound,
    WalletError,
    error_for_code,
)
from wallet.domain.holds import HoldAction
from wallet.domain.ledger import (
    CREDITS_USER,
    ISSUANCE,
    TREASURY,
    AccountRef,
    OwnerType,
    PostedTransaction,
    TransactionType,
    Transfer,
    plan_refund,
    refund_accounts,
    transfer_for,
)
from wallet.storage import Session
from wallet.storage import events as event_store
from wallet.storage import holds as hold_store
from wallet.storage import ledger as store

from .book import DEBITS_USER, Book, check_user_known
from .clock import new_transaction_id
from .commands import (
    BatchCommand,
    Command,
    ExpiryCommand,
    HoldCommand,
    Outcome,
    PostingCommand,
    postings_of,
)
from .expiring import apply_expiry, expiry_accounts
from .freezes import check_not_frozen
from .holding import apply_hold, hold_accounts
from .limits import DayUsage
from .lots import LotBook, lot_expiry_us
from .protection import load_protection

CREATED = "created"


def transfer_of(command: PostingCommand) -> Transfer:
    if command.transaction_type is TransactionType.ISSUANCE:
        assert command.amount_minor is not None
        return Transfer(
            debit=AccountRef.system(ISSUANCE, command.asset_code),
            credit=AccountRef.system(TREASURY, command.asset_code),
            amount_minor=command.amount_minor,
        )
    assert command.user_id is not None, "a user flow names its user"
    assert command.amount_minor is not None, "only a refund may leave its amount out"
    return transfer_for(
        command.transaction_type, command.user_id, command.asset_code, command.amount_minor
    )


def apply_commands(
    session: Session,
    commands: Sequence[Command],
    scales: Mapping[str, int],
    now_us: int,
    day_usage: DayUsage | None = None,
) -> list[Outcome]:
    """Apply ``commands`` in order within the caller's unit of work; one outcome each.
    ``day_usage``: the writer's memory of its accounts' usage of the day (daily limits)."""
    outcomes: list[Outcome | None] = [None] * len(commands)
    stored = _stored_outcomes(session, commands)
    first_with_key: dict[tuple[str, str], int] = {}
    to_post: list[int] = []
    for index, command in enumerate(commands):
        owned_key = _owned_key(command)
        if owned_key is None:
            to_post.append(index)
        elif owned_key in stored:
            outcomes[index] = _replay(stored[owned_key], command)
        elif owned_key not in first_with_key:
            first_with_key[owned_key] = index
            to_post.append(index)

    book = open_book(session, [commands[index] for index in to_post], now_us, day_usage)
    decided: list[tuple[str, str, store.StoredOutcome]] = []
    for index in to_post:
        command = commands[index]
        try:
            if isinstance(command, BatchCommand):
                outcome = _apply_batch(book, command, scales, now_us)
            elif isinstance(command, HoldCommand):
                hold, transaction_id = apply_hold(book, command, scales[command.asset_code], now_us)
                outcome = Outcome(body=book.views[hold.id], transaction_id=transaction_id)
            elif isinstance(command, ExpiryCommand):
                outcome = apply_expiry(book, command, scales[command.asset_code], now_us)
            else:
                transaction = apply_command(book, command, scales[command.asset_code], now_us)
                body = book.views[transaction.id]
                outcome = Outcome(body=body, transaction_id=transaction.id)
        except WalletError as error:
            outcome = Outcome(body=_error_body(error), error=error)
        outcomes[index] = outcome
        if command.idempotency_key is not None:
            decided.append(
                (command.key_owner, command.idempotency_key, _to_stored(command, outcome))
            )

    store.insert_transactions(session, book.posted, book.account_ids)
    book.lots.write(session, book.balances)
    hold_store.insert_holds(session, book.placed)
    hold_store.settle_holds(session, [book.holds[hold_id] for hold_id in book.settled])
    store.insert_outcomes(session, decided, now_us)
    if book.opened:
        used = {entry.account(t.asset_code) for t in book.posted for entry in t.entries}
        store.close_unused_accounts(session, [book.account_ids[a] for a in book.opened - used])
    if book.events:
        # Last: the lock this takes orders the events by commit (storage/events.py).
        event_store.append_events(session, book.events, now_us)

    # A key repeated within this batch gets the outcome of its first use.
    for index, command in enumerate(commands):
        if outcomes[index] is None:
            owned_key = _owned_key(command)
            assert owned_key is not None
            first = first_with_key[owned_key]
            first_outcome = outcomes[first]
            assert first_outcome is not None
            outcomes[index] = _replay(_to_stored(commands[first], first_outcome), command)
    return [outcome for outcome in outcomes if outcome is not None]


def _apply_batch(
    book: Book, batch: BatchCommand, scales: Mapping[str, int], now_us: int
) -> Outcome:
    """Apply a batch's items in order, each seeing the ones before it; on the first refusal,
    put the book back as it was, so that nothing of the batch is written.
    """
    mark = book.mark()
    views: list[bytes] = []
    first_id: str | None = None
    for index, item in enumerate(batch.items):
        try:
            transaction = apply_command(book, item, scales[item.asset_code], now_us)
            first_id = first_id or transaction.id
            views.append(book.views[transaction.id])
        except WalletError as error:
            book.restore(mark)
            raise BatchFailed(
                f"item {index} was refused ({error.code}): nothing was applied",
                [{"index": index, "code": error.code, "detail": error.detail}],
            ) from error
    # The batch's key points at its first transaction, which also tells the writer, after a
    # commit whose answer was lost, whether the batch was written.
    body = b'{"id":%s,"transactions":[%s]}' % (orjson.dumps(new_transaction_id()), b",".join(views))
    return Outcome(body=body, transaction_id=first_id)


def open_book(
    session: Session,
    commands: Sequence[Command],
    now_us: int,
    day_usage: DayUsage | None = None,
) -> Book:
    """Lock what ``commands`` may touch and read it: holds, then refunded originals, then
    accounts; then read their protection (freezes, daily limits, balance monitors:
    service/protection.py).

    Every unit of work takes its locks in this order (each kind by id), so two processes never
    wait on each other in a cycle.
    """
    holding = [c for c in commands if isinstance(c, HoldCommand)]
    postings = [p for c in commands for p in postings_of(c)]
    holds = hold_store.lock_holds(session, [c.hold_id for c in holding if c.hold_id is not None])
    originals = store.lock_transactions(
        session, [c.refund_of for c in postings if c.refund_of is not None]
    )
    touched: list[AccountRef] = []
    to_open: set[AccountRef] = set()
    for command in postings:
        if command.refund_of is not None:
            original = originals.get(command.refund_of)
            touched.extend(refund_accounts(original) if original is not None else ())
        else:
            transfer = transfer_of(command)
            touched.extend((transfer.debit, transfer.credit))
            to_open.update(_accounts_to_open([transfer]))
    for hold_command in holding:
        accounts_of_hold = hold_accounts(hold_command.user_id, hold_command.asset_code)
        touched.extend(accounts_of_hold)
        to_open.update(accounts_of_hold[1:])
    for expiry in (c for c in commands if isinstance(c, ExpiryCommand)):
        user, expired = expiry_accounts(expiry.user_id, expiry.asset_code)
        touched.extend((user, expired))
        to_open.add(expired)
    debtors = {
        c.user_id for c in postings if c.user_id is not None and c.transaction_type in DEBITS_USER
    } | {c.user_id for c in holding if c.action is HoldAction.PLACE}
    accounts, opened = store.open_and_lock_accounts(session, touched, to_open, now_us)
    # A user with an account that existed before this unit of work has been credited; ask the
    # database only about the others.
    known_users = {
        a.owner_id for a in accounts if a.owner_type is OwnerType.USER and a not in opened
    }
    known_users |= store.existing_users(session, sorted(debtors - known_users))
    account_ids = {account: locked.id for account, locked in accounts.items()}
    # After the accounts' locks: what it reads of their day cannot change before the commit.
    protection = load_protection(
        session, postings, holding, originals, account_ids, now_us, day_usage
    )
    book = Book(
        balances={account: locked.balance_minor for account, locked in accounts.items()},
        known_users=known_users,
        originals=originals,
        refunded={tid: original.refunded_minor for tid, original in originals.items()},
        account_ids=account_ids,
        opened=opened,
        holds=holds,
        frozen=protection.frozen,
        allowances=protection.allowances,
        monitors=protection.monitors,
        # Only the accounts that have had lots: the others have none to read or change.
        lots=LotBook.of(
            session,
            account_ids,
            {a: locked.lots_open_minor for a, locked in accounts.items() if locked.lots_made},
            {a: locked.lots_made for a, locked in accounts.items() if locked.lots_made},
        ),
    )
    if book.lots.open_minor:
        book.lots.prefetch(_debited(postings, holding, originals))
    return book


def _debited(
    postings: Sequence[PostingCommand],
    holding: Sequence[HoldCommand],
    originals: Mapping[str, PostedTransaction],
) -> list[AccountRef]:
    """The user accounts that ``postings`` and ``holding`` may take lots from: purchases, holds
    placed, chargebacks."""
    debited = [
        AccountRef.user(c.user_id, c.asset_code)
        for c in postings
        if c.transaction_type is TransactionType.PURCHASE and c.user_id is not None
    ]
    debited += [
        AccountRef.user(c.user_id, c.asset_code) for c in holding if c.action is HoldAction.PLACE
    ]
    for command in postings:
        original = originals.get(command.refund_of) if command.refund_of is not None else None
        if (
            original is not None
            and original.user_id is not None
            and original.transaction_type != TransactionType.PURCHASE.value
        ):
            debited.append(AccountRef.user(original.user_id, original.asset_code))
    return debited


def apply_command(
    book: Book, command: PostingCommand, scale: int, now_us: int
) -> PostedTransaction:
    """Apply one command to the book; raise the WalletError that refuses it, changing nothing."""
    original: PostedTransaction | None = None
    if command.refund_of is not None:
        original = book.originals.get(command.refund_of)
        if original is None:
            raise TransactionNotFound(f"no transaction with id {command.refund_of!r}")
        check_not_frozen(book.frozen, original.user_id, original.asset_code)
        refunded = book.refunded.get(original.id, 0)
        transfer = plan_refund(original, command.amount_minor, refunded, scale)
    else:
        check_not_frozen(book.frozen, command.user_id, command.asset_code)
        check_user_known(command.transaction_type, command.user_id, book.known_users)
        transfer = transfer_of(command)
    transaction = book.record(
        transfer,
        command.transaction_type,
        command.user_id,
        scale,
        now_us,
        description=command.description,
        idempotency_key=command.idempotency_key,
        refund_of=command.refund_of,
        metadata=command.metadata,
    )
    if original is not None:
        book.refunded[original.id] = refunded + transfer.amount_minor
        _refund_lots(book, original, refunded, transaction)
    elif command.transaction_type in CREDITS_USER:
        expires_at_us = lot_expiry_us(command.expires_at_us, command.expires_after_days, now_us)
        if expires_at_us is not None:
            book.lots.credit(
                transfer.credit, transaction.id, transfer.amount_minor, expires_at_us, now_us
            )
    elif command.transaction_type is TransactionType.PURCHASE:
        book.lots.debit(transfer.debit, transaction.id, transfer.amount_minor)
    return transaction


def _refund_lots(
    book: Book, original: PostedTransaction, refunded_before: int, refund: PostedTransaction
) -> None:
    """A purchase refund gives back to the lots the purchase took from; a chargeback takes
    from its credit's own lot first (service/lots.py)."""
    assert original.user_id is not None
    user = AccountRef.user(original.user_id, original.asset_code)
    if original.transaction_type == TransactionType.PURCHASE.value:
        book.lots.give_back(
            user, original.id, original.amount_minor, refunded_before, refund.amount_minor
        )
    else:
        book.lots.debit(user, refund.id, refund.amount_minor, first_lot_of=original.id)


def _owned_key(command: Command) -> tuple[str, str] | None:
    if command.idempotency_key is None:
        return None
    return (command.key_owner, command.idempotency_key)


def _stored_outcomes(
    session: Session, commands: Sequence[Command]
) -> dict[tuple[str, str], store.StoredOutcome]:
    keys_by_owner: dict[str, set[str]] = {}
    for command in commands:
        if command.idempotency_key is not None:
            keys_by_owner.setdefault(command.key_owner, set()).add(command.idempotency_key)
    found: dict[tuple[str, str], store.StoredOutcome] = {}
    for key_owner, keys in keys_by_owner.items():
        for key, outcome in store.find_outcomes(session, key_owner, sorted(keys)).items():
            found[(key_owner, key)] = outcome
    return found


def _replay(stored: store.StoredOutcome, command: Command) -> Outcome:
    if stored.fingerprint != command.fingerprint:
        error = IdempotencyKeyReused(
            f"idempotency key {command.idempotency_key!r} was used with a different payload"
        )
        return Outcome(body=_error_body(error), error=error)
    if stored.outcome == CREATED:
        return Outcome(
            body=stored.response_body.encode(),
            transaction_id=stored.transaction_id,
            replayed=True,
        )
    problem = orjson.loads(stored.response_body)
    extra = {name: value for name, value in problem.items() if name not in ("code", "detail")}
    refusal = error_for_code(stored.outcome, problem["detail"], extra)
    return Outcome(body=_error_body(refusal), error=refusal, replayed=True)


def _to_stored(command: Command, outcome: Outcome) -> store.StoredOutcome:
    return store.StoredOutcome(
        fingerprint=command.fingerprint,
        outcome=CREATED if outcome.error is None else outcome.error.code,
        response_body=outcome.body.decode(),
        transaction_id=outcome.transaction_id,
    )


def _error_body(error: WalletError) -> bytes:
    return orjson.dumps({"code": error.code, "detail": error.detail, **error.extra})


def _accounts_to_open(transfers: Iterable[Transfer]) -> set[AccountRef]:
    """Credited accounts open on first use; so does an asset's issuance account."""
    accounts: set[AccountRef] = set()
    for transfer in transfers:
        accounts.add(transfer.credit)
        if transfer.debit.may_go_negative:
            accounts.add(transfer.debit)
    return accounts
