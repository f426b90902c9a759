"""Every bound the service enforces, in one place.

Anything that grows (a body, a page, a queue, a retry loop, an amount) has its limit here, so a
reader can see at once what the service will and will not accept.
"""

# Money. An amount is at most a billion major units; a supply fits in a signed 64-bit integer of
# minor units with room to spare, at every scale we allow.
AMOUNT_MAJOR_MAX = 1_000_000_000
SCALE_MAX = 8
SUPPLY_MINOR_MAX = 10**18
SEED_SUPPLY_MAJOR = 1_000_000_000_000
# How many characters an amount may be written with: a decimal string, and every JSON number of a
# request body as written (sign, point and exponent included). A longer number is never converted,
# so that no client makes the service turn 64 KiB of digits into an integer.
AMOUNT_LENGTH_MAX = 40

# Instants a client names (a balance's ?as_of=, `wallet export --since/--until`): the years 1 to
# 9999 in UTC, once the instant's offset is applied. RFC 3339 writes no other year, and neither
# can the timestamps the service answers with; this range cannot grow.
INSTANT_YEAR_MIN = 1
INSTANT_YEAR_MAX = 9999

# Identifiers and text.
USER_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$"
IDEMPOTENCY_KEY_LENGTH_MAX = 255
DESCRIPTION_LENGTH_MAX = 500
ASSET_CODE_PATTERN = r"^[A-Z]{2,10}$"
# Metadata: the caller's references on a transaction or a hold (the schema checks the lengths
# again), and how many of them one list request may filter by.
METADATA_MEMBERS_MAX = 20
METADATA_KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,40}$"
METADATA_VALUE_LENGTH_MAX = 500
METADATA_FILTERS_MAX = 3

# HTTP.
REQUEST_BODY_BYTES_MAX = 64 * 1024
# The request's head, counted as it arrives, before any of it is kept or handed on (server.py):
# the request line (method, target, version) over REQUEST_LINE_BYTES_MAX is answered 414; one
# header (name and value) over HEADER_BYTES_MAX, all of them over HEADERS_BYTES_MAX, or more than
# HEADERS_COUNT_MAX of them, 431; and the connection is closed.
REQUEST_LINE_BYTES_MAX = 8 * 1024
HEADER_BYTES_MAX = 8 * 1024
HEADERS_BYTES_MAX = 32 * 1024
HEADERS_COUNT_MAX = 100
# Slow clients: a request's headers must arrive within HEADERS_TIMEOUT_S of its first byte (a new
# connection's first request: of the connection), and its body within BODY_TIMEOUT_S of its
# headers; past either, 408 and the connection is closed. Settings WALLET_HEADERS_TIMEOUT_S and
# WALLET_BODY_TIMEOUT_S may shorten or lengthen them.
HEADERS_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 10.0
# Open connections served at once (setting WALLET_CONNECTIONS_MAX); one more is answered 503 and
# closed at once. At start the process raises its soft limit of open files to the hard one and
# keeps FILE_DESCRIPTORS_RESERVED of them for itself (database, logs, the listening socket): the
# bound is lowered to fit, with a warning, when the hard limit is too small.
CONNECTIONS_MAX = 4096
# How long an idle keep-alive connection stays open (setting WALLET_KEEP_ALIVE_S). Longer than
# the idle expiry of common HTTP clients (5 s, httpx's and so the Python client's) and of most
# load balancers (60 s): such a client closes an idle connection first, so it never sends a
# request onto a connection the service is closing at that moment (it would see the connection
# reset, not knowing whether its request was done). Clients that keep theirs longer (Go's 90 s,
# a proxy's 600 s) need the setting raised above theirs. Idle connections count against
# CONNECTIONS_MAX; at the bound the one idle the longest is closed to serve a new one.
KEEP_ALIVE_S = 75
FILE_DESCRIPTORS_RESERVED = 128
HISTORY_PAGE_SIZE_DEFAULT = 50
HISTORY_PAGE_SIZE_MAX = 500
# A page cursor as a query parameter (the service hands out far shorter ones).
CURSOR_LENGTH_MAX = 200
# What a daily limits page's cursor names (an asset code and a user id) is at most this long.
LIMIT_CURSOR_LENGTH_MAX = 140
LIMIT_PAGE_SIZE_DEFAULT = 50
LIMIT_PAGE_SIZE_MAX = 500
# POST /transaction/batch: how many transactions one batch may carry.
BATCH_SIZE_MAX = 100

# Write path (group commit): how many writes may wait, and how many go into one commit.
WRITE_QUEUE_LENGTH_MAX = 2048
WRITE_BATCH_SIZE_MAX = 256
# How long a request waits for its commit before it is told the service is unavailable.
WRITE_WAIT_TIMEOUT_S = 30.0
# A unit of work that fails for a transient reason (a lost connection, a deadlock, a lock
# timeout) is tried again this many times before the requests in it are answered 503.
WRITE_RETRIES_MAX = 3
RETRY_AFTER_S = 1

# An unknown asset code reloads the asset list at most this often (assets added by another
# process become visible within this bound).
ASSET_REFRESH_INTERVAL_S = 1.0
# Each process reads the asset list again this often, so that a change of an asset's expiry
# policy made by another process (PATCH /admin/assets/{code}, `wallet assets set`) applies to
# its credits within this bound; the process that made the change applies it at once.
ASSET_POLICY_REFRESH_INTERVAL_S = 5.0
# An asset's credits expire at most this many days after they are made (API.md, "Credits that
# expire"; the schema checks the same bound).
EXPIRES_AFTER_DAYS_MAX = 3650

# Database.
DB_LOCK_TIMEOUT_MS = 5_000
DB_STATEMENT_TIMEOUT_MS = 10_000
DB_CONNECT_TIMEOUT_S = 5
# PostgreSQL readers' pool: a connection that failed is tried again with a doubling delay (1, 2,
# 4 s, ...) for this long, then left for the next read to ask for, at once. After a failover the
# readers thus find the new primary within a few seconds, however long there was none.
DB_POOL_RECONNECT_TIMEOUT_S = 3.0
# PostgreSQL: how long a starting process waits for another one's migrations (an index built
# concurrently on a large ledger may take minutes), asking again every MIGRATION_LOCK_POLL_S.
MIGRATION_LOCK_WAIT_S = 1800.0
MIGRATION_LOCK_POLL_S = 0.2
DB_READ_POOL_SIZE_MAX = 8
# SQLite: the group-commit writer's WAL is copied into the database file by a checkpointer thread
# (storage/database.py, WalCheckpointer), one pass per SQLITE_CHECKPOINT_INTERVAL_S at most while
# the WAL is under half of SQLITE_WAL_PAGES_MAX, back to back beyond. At SQLITE_WAL_PAGES_MAX the
# writer checkpoints what is left itself after its commits (SQLite's own automatic checkpoint,
# 1,000 pages by default). After a spike (a long read holds the WAL back) the WAL file is cut back
# to SQLITE_WAL_FILE_BYTES_MAX. A pass that failed is tried again after
# SQLITE_CHECKPOINT_ERROR_PAUSE_S.
SQLITE_CHECKPOINT_INTERVAL_S = 0.1
SQLITE_CHECKPOINT_ERROR_PAUSE_S = 1.0
SQLITE_WAL_PAGES_MAX = 4_000
SQLITE_WAL_FILE_BYTES_MAX = 64 * 1024 * 1024

# Ledger audit (`wallet verify`): how many problems of one kind are listed before the report
# says "and more", and how long one of its statements may run on PostgreSQL (it reads every entry).
VERIFY_PROBLEMS_PER_CHECK_MAX = 100
VERIFY_STATEMENT_TIMEOUT_MS = 600_000

# Holds: how long a hold may wait for its capture, and how many expired holds one pass of the
# expiry sweeper releases (the rest wait for the next pass, which follows at once).
HOLD_EXPIRES_IN_S_DEFAULT = 600
HOLD_EXPIRES_IN_S_MAX = 604_800
HOLD_SWEEP_BATCH_MAX = 100
HOLD_PAGE_SIZE_DEFAULT = 50
HOLD_PAGE_SIZE_MAX = 500
# An account's open lots (GET /balance/{user_id}/{asset_code}/lots), and how many of the soonest
# a Balance shows in ``expiring``.
LOT_PAGE_SIZE_DEFAULT = 50
LOT_PAGE_SIZE_MAX = 500
LOTS_EXPIRING_SHOWN = 3

# Credits that expire (service/lots.py): how far ahead a request's ``expires_at`` may be (ten
# years), how many due lots one pass of the expiry sweep reads, how many of their accounts it
# submits to the writer at once (one command per account), how long it pauses after each chunk
# (this many times what the chunk took: the sweep keeps at most a third of the writer's time, the
# rest is the requests'), how often it looks for due lots, and how many open lots a debit reads
# from the database at a time (pages grow as a debit goes deeper).
# LOT_EXPIRY_LOTS_MAX: how many due lots of one account one ``expiry`` transaction takes at most,
# so that a chunk, which the writer may commit in one unit of work with the requests queued
# beside it, changes at most LOT_SWEEP_CHUNK x LOT_EXPIRY_LOTS_MAX (2,048) lots however many are
# due; an account that had more due is taken up again by the next pass, which follows at once.
LOT_EXPIRES_AT_YEARS_MAX = 10
LOT_SWEEP_BATCH_MAX = 500
LOT_SWEEP_CHUNK = 32
LOT_EXPIRY_LOTS_MAX = 64
LOT_SWEEP_PAUSE_RATIO = 2.0
LOT_SWEEP_INTERVAL_S = 5.0
LOT_PAGE_SIZE = 32

# Freezes (API.md, "Player protection"): a reason's length, and a page of a user's freeze log.
FREEZE_REASON_LENGTH_MAX = 500
FREEZE_LOG_PAGE_SIZE_DEFAULT = 50
FREEZE_LOG_PAGE_SIZE_MAX = 500

# Events (GET /events): a page's size, how long a reader may wait for the next event, how many
# readers may wait at once (each holds a connection but no thread and no database connection),
# and how often waiting readers look for events written by another process.
EVENT_PAGE_SIZE_DEFAULT = 100
EVENT_PAGE_SIZE_MAX = 1_000
EVENT_WAIT_S_MAX = 30.0
EVENT_WAITERS_MAX = 2_000
EVENT_POLL_INTERVAL_S = 0.2
POSITION_MAX = 2**63 - 1
# Retention: events older than WALLET_EVENTS_RETENTION_DAYS are deleted this many at a time (one
# short unit of work each), a pass every EVENT_PRUNE_INTERVAL_S.
EVENT_RETENTION_DAYS_DEFAULT = 90
EVENT_PRUNE_BATCH = 1_000
EVENT_PRUNE_INTERVAL_S = 60.0

# API keys: how long a process may go on using its copy of the keys table, so the longest a key
# created or revoked with `wallet keys` takes to be honoured (or refused) by a running service.
AUTH_KEYS_REFRESH_S = 5.0
KEY_NAME_PATTERN = r"^[A-Za-z0-9._:@ -]{1,100}$"

# Reports: how many UTC days an asset's activity report may cover.
ACTIVITY_DAYS_DEFAULT = 30
ACTIVITY_DAYS_MAX = 90

# Ledger export (`wallet export`): entries are read in pages of this many, so an export of any
# size holds one page in memory. The whole export reads one snapshot; its statements may run this
# long on PostgreSQL (the count for the progress bar reads every entry of the range), and the
# snapshot may stay open this long between two pages while a slow reader drains the output.
EXPORT_PAGE_SIZE = 1_000
EXPORT_STATEMENT_TIMEOUT_MS = 600_000
EXPORT_IDLE_TIMEOUT_MS = 3_600_000

# Graceful shutdown: on SIGTERM the server stops accepting connections and gives the requests in
# flight this long to be answered; the writer then commits what is queued, and the process exits.
SHUTDOWN_GRACE_S = 10
# A keep-alive connection that is between two requests when shutdown begins stays open this long,
# so that a request its client has already sent is answered rather than reset.
SHUTDOWN_IDLE_LINGER_S = 1.0

# The service's relay process (relay_process.py, WALLET_EVENTS_RELAY=process): one that ends
# unasked is started again after RELAY_PROCESS_RESTART_S, doubled at each restart while it keeps
# ending within RELAY_PROCESS_STEADY_S of its start, up to RELAY_PROCESS_RESTART_MAX_S. On
# shutdown it has RELAY_PROCESS_STOP_S to give its leases back (a delivery in flight may take
# WALLET_WEBHOOK_TIMEOUT_S), then it is killed.
RELAY_PROCESS_RESTART_S = 1.0
RELAY_PROCESS_RESTART_MAX_S = 30.0
RELAY_PROCESS_STEADY_S = 60.0
RELAY_PROCESS_STOP_S = 15.0

# The event stream (service/stream.py, NATS JetStream). A connection is given
# EVENTS_NATS_CONNECT_TIMEOUT_S per attempt, and EVENTS_NATS_RECONNECTS_MAX attempts (one every
# EVENTS_NATS_RECONNECT_WAIT_S) before it is given up; the next event to deliver connects again.
# An event is delivered once JetStream acknowledges it within EVENTS_NATS_ACK_TIMEOUT_S, and
# JetStream keeps one copy of an event published again within EVENTS_NATS_DUPLICATE_WINDOW_S
# (its Nats-Msg-Id is the event id; a stream created here gets this window). Closing drains what
# is in flight for at most EVENTS_NATS_DRAIN_TIMEOUT_S.
EVENTS_NATS_CONNECT_TIMEOUT_S = 5
EVENTS_NATS_RECONNECTS_MAX = 5
EVENTS_NATS_RECONNECT_WAIT_S = 1
EVENTS_NATS_ACK_TIMEOUT_S = 10.0
EVENTS_NATS_DUPLICATE_WINDOW_S = 300.0
EVENTS_NATS_DRAIN_TIMEOUT_S = 5
# Event relays (webhooks, the NATS stream): a process serves a relay under a lease of
# EVENTS_LEASE_S (setting WALLET_EVENTS_LEASE_S), renewed every third of it, so the relays of a
# process that died are taken up again within that bound; the runner looks for work every
# EVENTS_RELAY_POLL_S (WALLET_EVENTS_RELAY_POLL_S). It reads at most RELAY_BATCH_SIZE events at
# a time. A failed delivery is tried again after a jittered delay: the first within
# RELAY_RETRY_FIRST_MAX_S, each at most twice the one before, never over RELAY_RETRY_DELAY_MAX_S;
# a relay failing for RELAY_FAILING_MAX_S is disabled. Each relay keeps its latest
# DELIVERY_ATTEMPTS_KEPT attempts; an error is kept to RELAY_ERROR_LENGTH_MAX characters.
EVENTS_LEASE_S = 15.0
EVENTS_RELAY_POLL_S = 0.25
# Acknowledged deliveries are recorded (cursor, attempts) together, at least this often and at
# the end of each batch read: a crash makes at most that many events go again.
RELAY_FLUSH_INTERVAL_S = 0.1
# 1,000: a relay that keeps up with a few thousand events a second then records (one unit of work
# on the ledger's database) every RELAY_FLUSH_INTERVAL_S, not every 100 events.
RELAY_BATCH_SIZE = 1_000
RELAY_RETRY_FIRST_MAX_S = 5.0
RELAY_RETRY_DELAY_MAX_S = 3600.0
RELAY_FAILING_MAX_S = 3 * 86_400
DELIVERY_ATTEMPTS_KEPT = 100
RELAY_ERROR_LENGTH_MAX = 500
# Webhooks: how many endpoints may exist, a URL's length, how long one delivery may take before
# it counts as failed (setting WALLET_WEBHOOK_TIMEOUT_S), and how much of an answer is read (one
# connection per endpoint: its deliveries go one at a time).
WEBHOOK_ENDPOINTS_MAX = 100
WEBHOOK_URL_LENGTH_MAX = 2048
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_RESPONSE_BYTES_MAX = 4096
# Balance monitors: how many may exist (a unit of work that moves a user's balance reads the
# monitors of its assets and users, so this bounds what it reads), and a page of their list.
MONITORS_MAX = 1_000
MONITOR_PAGE_SIZE_DEFAULT = 100
MONITOR_PAGE_SIZE_MAX = 1_000
# Daily limits: how many accounts' usage of the day a writer remembers (service/limits.DayUsage)
# before it forgets them all and reads each one's whole day again.
DAY_USAGE_ACCOUNTS_MAX = 100_000
