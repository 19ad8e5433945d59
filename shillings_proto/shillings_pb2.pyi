from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Command(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LGN: _ClassVar[Command]
    SGN: _ClassVar[Command]
    USR: _ClassVar[Command]
    PAY: _ClassVar[Command]
    TPU: _ClassVar[Command]
    TXQ: _ClassVar[Command]
    RVK: _ClassVar[Command]
    HLT: _ClassVar[Command]
    HEL: _ClassVar[Command]
    HLD: _ClassVar[Command]
    HLC: _ClassVar[Command]
    HLV: _ClassVar[Command]
    HLQ: _ClassVar[Command]
    RFD: _ClassVar[Command]
    EVQ: _ClassVar[Command]
    WHC: _ClassVar[Command]
    WHQ: _ClassVar[Command]
    WHD: _ClassVar[Command]
    WHL: _ClassVar[Command]
LGN: Command
SGN: Command
USR: Command
PAY: Command
TPU: Command
TXQ: Command
RVK: Command
HLT: Command
HEL: Command
HLD: Command
HLC: Command
HLV: Command
HLQ: Command
RFD: Command
EVQ: Command
WHC: Command
WHQ: Command
WHD: Command
WHL: Command

class Status(_message.Message):
    __slots__ = ("code", "reason", "message", "no_effect", "retry_after", "replayed")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NO_EFFECT_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    code: int
    reason: str
    message: str
    no_effect: bool
    retry_after: int
    replayed: bool
    def __init__(self, code: _Optional[int] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., no_effect: _Optional[bool] = ..., retry_after: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class Auth(_message.Message):
    __slots__ = ("user_id", "token_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    token_id: str
    def __init__(self, user_id: _Optional[int] = ..., token_id: _Optional[str] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("user_id", "first_name", "middle_name", "last_name", "email", "phone", "balance", "created_at", "updated_at", "held", "available", "next_hold_expiry_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    MIDDLE_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    NEXT_HOLD_EXPIRY_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    first_name: str
    middle_name: str
    last_name: str
    email: str
    phone: str
    balance: int
    created_at: str
    updated_at: str
    held: int
    available: int
    next_hold_expiry_ms: int
    def __init__(self, user_id: _Optional[int] = ..., first_name: _Optional[str] = ..., middle_name: _Optional[str] = ..., last_name: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., balance: _Optional[int] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., held: _Optional[int] = ..., available: _Optional[int] = ..., next_hold_expiry_ms: _Optional[int] = ...) -> None: ...

class Transaction(_message.Message):
    __slots__ = ("transaction_id", "sender_email", "receiver_email", "amount", "created_at", "kind", "hold_id", "refund_of", "refunded_amount")
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    REFUND_OF_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    sender_email: str
    receiver_email: str
    amount: int
    created_at: str
    kind: str
    hold_id: str
    refund_of: str
    refunded_amount: int
    def __init__(self, transaction_id: _Optional[str] = ..., sender_email: _Optional[str] = ..., receiver_email: _Optional[str] = ..., amount: _Optional[int] = ..., created_at: _Optional[str] = ..., kind: _Optional[str] = ..., hold_id: _Optional[str] = ..., refund_of: _Optional[str] = ..., refunded_amount: _Optional[int] = ...) -> None: ...

class Hold(_message.Message):
    __slots__ = ("hold_id", "payer_email", "receiver_email", "amount", "captured_amount", "state", "expires_at", "created_at", "updated_at", "capture_transaction_id")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    PAYER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    payer_email: str
    receiver_email: str
    amount: int
    captured_amount: int
    state: str
    expires_at: str
    created_at: str
    updated_at: str
    capture_transaction_id: str
    def __init__(self, hold_id: _Optional[str] = ..., payer_email: _Optional[str] = ..., receiver_email: _Optional[str] = ..., amount: _Optional[int] = ..., captured_amount: _Optional[int] = ..., state: _Optional[str] = ..., expires_at: _Optional[str] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., capture_transaction_id: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("event_id", "type", "created_at", "data_json")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: str
    created_at: str
    data_json: str
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[str] = ..., created_at: _Optional[str] = ..., data_json: _Optional[str] = ...) -> None: ...

class Webhook(_message.Message):
    __slots__ = ("webhook_id", "url", "event_types", "state", "secret", "created_at")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    url: str
    event_types: _containers.RepeatedScalarFieldContainer[str]
    state: str
    secret: str
    created_at: str
    def __init__(self, webhook_id: _Optional[str] = ..., url: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., state: _Optional[str] = ..., secret: _Optional[str] = ..., created_at: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("event_id", "attempt", "status_code", "error", "duration_ms", "attempted_at")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTED_AT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    attempt: int
    status_code: int
    error: str
    duration_ms: int
    attempted_at: str
    def __init__(self, event_id: _Optional[str] = ..., attempt: _Optional[int] = ..., status_code: _Optional[int] = ..., error: _Optional[str] = ..., duration_ms: _Optional[int] = ..., attempted_at: _Optional[str] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("email", "password")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    email: str
    password: str
    def __init__(self, email: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("token", "token_id", "expires_at", "user")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    token: str
    token_id: str
    expires_at: int
    user: User
    def __init__(self, token: _Optional[str] = ..., token_id: _Optional[str] = ..., expires_at: _Optional[int] = ..., user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class SignupRequest(_message.Message):
    __slots__ = ("first_name", "middle_name", "last_name", "email", "phone", "password")
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    MIDDLE_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    first_name: str
    middle_name: str
    last_name: str
    email: str
    phone: str
    password: str
    def __init__(self, first_name: _Optional[str] = ..., middle_name: _Optional[str] = ..., last_name: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class SignupResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class ProfileRequest(_message.Message):
    __slots__ = ("auth",)
    AUTH_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ...) -> None: ...

class ProfileResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class PayRequest(_message.Message):
    __slots__ = ("auth", "receiver_email", "amount", "idempotency_key")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    receiver_email: str
    amount: int
    idempotency_key: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., receiver_email: _Optional[str] = ..., amount: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class PayResponse(_message.Message):
    __slots__ = ("transaction_id", "sender_balance")
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_BALANCE_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    sender_balance: int
    def __init__(self, transaction_id: _Optional[str] = ..., sender_balance: _Optional[int] = ...) -> None: ...

class TopupRequest(_message.Message):
    __slots__ = ("auth", "amount", "idempotency_key")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    amount: int
    idempotency_key: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., amount: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class TopupResponse(_message.Message):
    __slots__ = ("transaction_id", "balance")
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    balance: int
    def __init__(self, transaction_id: _Optional[str] = ..., balance: _Optional[int] = ...) -> None: ...

class TransactionsRequest(_message.Message):
    __slots__ = ("auth", "limit", "cursor", "hold_id")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    limit: int
    cursor: str
    hold_id: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ..., hold_id: _Optional[str] = ...) -> None: ...

class TransactionsResponse(_message.Message):
    __slots__ = ("transactions", "next_cursor")
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[Transaction]
    next_cursor: str
    def __init__(self, transactions: _Optional[_Iterable[_Union[Transaction, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class RevokeRequest(_message.Message):
    __slots__ = ("auth", "expires_at")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    expires_at: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., expires_at: _Optional[int] = ...) -> None: ...

class RevokeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("database_ok",)
    DATABASE_OK_FIELD_NUMBER: _ClassVar[int]
    database_ok: bool
    def __init__(self, database_ok: _Optional[bool] = ...) -> None: ...

class HoldRequest(_message.Message):
    __slots__ = ("auth", "receiver_email", "amount", "expires_in", "idempotency_key")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    receiver_email: str
    amount: int
    expires_in: int
    idempotency_key: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., receiver_email: _Optional[str] = ..., amount: _Optional[int] = ..., expires_in: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class HoldResponse(_message.Message):
    __slots__ = ("hold", "available")
    HOLD_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    hold: Hold
    available: int
    def __init__(self, hold: _Optional[_Union[Hold, _Mapping]] = ..., available: _Optional[int] = ...) -> None: ...

class CaptureRequest(_message.Message):
    __slots__ = ("auth", "hold_id", "amount", "idempotency_key")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    hold_id: str
    amount: int
    idempotency_key: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., hold_id: _Optional[str] = ..., amount: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CaptureResponse(_message.Message):
    __slots__ = ("hold", "transaction_id")
    HOLD_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    hold: Hold
    transaction_id: str
    def __init__(self, hold: _Optional[_Union[Hold, _Mapping]] = ..., transaction_id: _Optional[str] = ...) -> None: ...

class VoidRequest(_message.Message):
    __slots__ = ("auth", "hold_id", "idempotency_key")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    hold_id: str
    idempotency_key: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., hold_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class VoidResponse(_message.Message):
    __slots__ = ("hold",)
    HOLD_FIELD_NUMBER: _ClassVar[int]
    hold: Hold
    def __init__(self, hold: _Optional[_Union[Hold, _Mapping]] = ...) -> None: ...

class HoldsRequest(_message.Message):
    __slots__ = ("auth", "role", "state", "limit", "cursor")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    role: str
    state: str
    limit: int
    cursor: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., role: _Optional[str] = ..., state: _Optional[str] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class HoldsResponse(_message.Message):
    __slots__ = ("holds", "next_cursor")
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    holds: _containers.RepeatedCompositeFieldContainer[Hold]
    next_cursor: str
    def __init__(self, holds: _Optional[_Iterable[_Union[Hold, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class RefundRequest(_message.Message):
    __slots__ = ("auth", "transaction_id", "amount", "idempotency_key")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    transaction_id: str
    amount: int
    idempotency_key: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., transaction_id: _Optional[str] = ..., amount: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class RefundResponse(_message.Message):
    __slots__ = ("refund", "balance")
    REFUND_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    refund: Transaction
    balance: int
    def __init__(self, refund: _Optional[_Union[Transaction, _Mapping]] = ..., balance: _Optional[int] = ...) -> None: ...

class EventsRequest(_message.Message):
    __slots__ = ("auth", "type", "limit", "cursor")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    type: str
    limit: int
    cursor: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., type: _Optional[str] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class EventsResponse(_message.Message):
    __slots__ = ("events", "next_cursor")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    next_cursor: str
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class WebhookCreateRequest(_message.Message):
    __slots__ = ("auth", "url", "event_types", "idempotency_key")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    url: str
    event_types: _containers.RepeatedScalarFieldContainer[str]
    idempotency_key: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., url: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class WebhookCreateResponse(_message.Message):
    __slots__ = ("webhook",)
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    webhook: Webhook
    def __init__(self, webhook: _Optional[_Union[Webhook, _Mapping]] = ...) -> None: ...

class WebhooksRequest(_message.Message):
    __slots__ = ("auth",)
    AUTH_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ...) -> None: ...

class WebhooksResponse(_message.Message):
    __slots__ = ("webhooks",)
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    webhooks: _containers.RepeatedCompositeFieldContainer[Webhook]
    def __init__(self, webhooks: _Optional[_Iterable[_Union[Webhook, _Mapping]]] = ...) -> None: ...

class WebhookDeleteRequest(_message.Message):
    __slots__ = ("auth", "webhook_id")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    webhook_id: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., webhook_id: _Optional[str] = ...) -> None: ...

class WebhookDeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeliveriesRequest(_message.Message):
    __slots__ = ("auth", "webhook_id", "limit", "cursor")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    webhook_id: str
    limit: int
    cursor: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., webhook_id: _Optional[str] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class DeliveriesResponse(_message.Message):
    __slots__ = ("deliveries", "next_cursor")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    next_cursor: str
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class HelloRequest(_message.Message):
    __slots__ = ("secret",)
    SECRET_FIELD_NUMBER: _ClassVar[int]
    secret: str
    def __init__(self, secret: _Optional[str] = ...) -> None: ...

class HelloResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Request(_message.Message):
    __slots__ = ("request_id", "command", "trace_id", "deadline_ms", "login", "signup", "profile", "pay", "topup", "transactions", "revoke", "health", "hello", "hold", "capture", "void", "holds", "refund", "events", "webhook_create", "webhooks", "webhook_delete", "deliveries")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    SIGNUP_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PAY_FIELD_NUMBER: _ClassVar[int]
    TOPUP_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    REVOKE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    VOID_FIELD_NUMBER: _ClassVar[int]
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_CREATE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_DELETE_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    command: Command
    trace_id: str
    deadline_ms: int
    login: LoginRequest
    signup: SignupRequest
    profile: ProfileRequest
    pay: PayRequest
    topup: TopupRequest
    transactions: TransactionsRequest
    revoke: RevokeRequest
    health: HealthRequest
    hello: HelloRequest
    hold: HoldRequest
    capture: CaptureRequest
    void: VoidRequest
    holds: HoldsRequest
    refund: RefundRequest
    events: EventsRequest
    webhook_create: WebhookCreateRequest
    webhooks: WebhooksRequest
    webhook_delete: WebhookDeleteRequest
    deliveries: DeliveriesRequest
    def __init__(self, request_id: _Optional[int] = ..., command: _Optional[_Union[Command, str]] = ..., trace_id: _Optional[str] = ..., deadline_ms: _Optional[int] = ..., login: _Optional[_Union[LoginRequest, _Mapping]] = ..., signup: _Optional[_Union[SignupRequest, _Mapping]] = ..., profile: _Optional[_Union[ProfileRequest, _Mapping]] = ..., pay: _Optional[_Union[PayRequest, _Mapping]] = ..., topup: _Optional[_Union[TopupRequest, _Mapping]] = ..., transactions: _Optional[_Union[TransactionsRequest, _Mapping]] = ..., revoke: _Optional[_Union[RevokeRequest, _Mapping]] = ..., health: _Optional[_Union[HealthRequest, _Mapping]] = ..., hello: _Optional[_Union[HelloRequest, _Mapping]] = ..., hold: _Optional[_Union[HoldRequest, _Mapping]] = ..., capture: _Optional[_Union[CaptureRequest, _Mapping]] = ..., void: _Optional[_Union[VoidRequest, _Mapping]] = ..., holds: _Optional[_Union[HoldsRequest, _Mapping]] = ..., refund: _Optional[_Union[RefundRequest, _Mapping]] = ..., events: _Optional[_Union[EventsRequest, _Mapping]] = ..., webhook_create: _Optional[_Union[WebhookCreateRequest, _Mapping]] = ..., webhooks: _Optional[_Union[WebhooksRequest, _Mapping]] = ..., webhook_delete: _Optional[_Union[WebhookDeleteRequest, _Mapping]] = ..., deliveries: _Optional[_Union[DeliveriesRequest, _Mapping]] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("request_id", "command", "status", "login", "signup", "profile", "pay", "topup", "transactions", "revoke", "health", "hello", "goaway", "hold", "capture", "void", "holds", "refund", "events", "webhook_create", "webhooks", "webhook_delete", "deliveries")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    SIGNUP_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PAY_FIELD_NUMBER: _ClassVar[int]
    TOPUP_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    REVOKE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    GOAWAY_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    VOID_FIELD_NUMBER: _ClassVar[int]
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_CREATE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_DELETE_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    command: Command
    status: Status
    login: LoginResponse
    signup: SignupResponse
    profile: ProfileResponse
    pay: PayResponse
    topup: TopupResponse
    transactions: TransactionsResponse
    revoke: RevokeResponse
    health: HealthResponse
    hello: HelloResponse
    goaway: GoAway
    hold: HoldResponse
    capture: CaptureResponse
    void: VoidResponse
    holds: HoldsResponse
    refund: RefundResponse
    events: EventsResponse
    webhook_create: WebhookCreateResponse
    webhooks: WebhooksResponse
    webhook_delete: WebhookDeleteResponse
    deliveries: DeliveriesResponse
    def __init__(self, request_id: _Optional[int] = ..., command: _Optional[_Union[Command, str]] = ..., status: _Optional[_Union[Status, _Mapping]] = ..., login: _Optional[_Union[LoginResponse, _Mapping]] = ..., signup: _Optional[_Union[SignupResponse, _Mapping]] = ..., profile: _Optional[_Union[ProfileResponse, _Mapping]] = ..., pay: _Optional[_Union[PayResponse, _Mapping]] = ..., topup: _Optional[_Union[TopupResponse, _Mapping]] = ..., transactions: _Optional[_Union[TransactionsResponse, _Mapping]] = ..., revoke: _Optional[_Union[RevokeResponse, _Mapping]] = ..., health: _Optional[_Union[HealthResponse, _Mapping]] = ..., hello: _Optional[_Union[HelloResponse, _Mapping]] = ..., goaway: _Optional[_Union[GoAway, _Mapping]] = ..., hold: _Optional[_Union[HoldResponse, _Mapping]] = ..., capture: _Optional[_Union[CaptureResponse, _Mapping]] = ..., void: _Optional[_Union[VoidResponse, _Mapping]] = ..., holds: _Optional[_Union[HoldsResponse, _Mapping]] = ..., refund: _Optional[_Union[RefundResponse, _Mapping]] = ..., events: _Optional[_Union[EventsResponse, _Mapping]] = ..., webhook_create: _Optional[_Union[WebhookCreateResponse, _Mapping]] = ..., webhooks: _Optional[_Union[WebhooksResponse, _Mapping]] = ..., webhook_delete: _Optional[_Union[WebhookDeleteResponse, _Mapping]] = ..., deliveries: _Optional[_Union[DeliveriesResponse, _Mapping]] = ...) -> None: ...

class GoAway(_message.Message):
    __slots__ = ("last_request_id",)
    LAST_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    last_request_id: int
    def __init__(self, last_request_id: _Optional[int] = ...) -> None: ...
