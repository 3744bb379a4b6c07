"""Salesforce REST / Bulk API 2.0 emulator (``SalesforceApp`` in :mod:`.app`).

Settings, read from ``get_config(state, "salesforce")`` (``POST /__sandbox/config/salesforce``):

- ``daily_limit`` (100000): API requests per sandbox-clock day; then 403 ``REQUEST_LIMIT_EXCEEDED``.
- ``token_ttl_seconds`` (7200): access-token lifetime on the sandbox clock.
- ``default_batch_size`` (2000): REST query page size without ``Sforce-Query-Options``.
- ``bulk_results_max_records`` (50000): Bulk 2.0 results page size without ``maxRecords``.
- ``query_locator_ttl_seconds`` (900): idle lifetime of a ``nextRecordsUrl`` cursor.
- ``recycle_bin_days`` (15): how long deleted rows stay visible to queryAll / ``deleted/``.
- ``fls_restricted_fields`` / ``fls_hidden_fields``: ``["Account.Field__c", ...]`` emulated
  field-level security (read-only / invisible for the API user).
- ``api_user_id``: the User id written to ``CreatedById``/``LastModifiedById``/default ``OwnerId``
  (default: the User whose ``Username`` is the token's user, else a stable synthetic id).
- ``client_credentials_user``: the username client-credentials tokens run as (default: the first
  entry of ``config:salesforce_users``).

Credentials live in meta keys: ``config:salesforce_clients`` (client id -> secret),
``config:salesforce_users`` (username -> password + security token) and, optionally,
``config:salesforce_jwt_keys`` (client id -> PEM public key, enables JWT signature checks).
Tests and benchmarks: :mod:`.testing` builds a trusted session, a token and a client.
"""
