"""Build the CRM connectors from the Dagster resources' settings.

Why a separate module: resources hold settings (resolved from environment variables at run
time); the connectors take frozen config objects. This is the only place that translates one into
the other, so a new connector option is wired once.
"""

from typing import Any

from connectors.errors import AuthenticationError
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.connector import HubSpotConnector
from connectors.salesforce.config import SalesforceConfig, auth_from_settings
from connectors.salesforce.connector import SalesforceConnector
from unified_model.settings import SANDBOX_HINT
from unified_model.writeback import WritebackConfig


def build_salesforce(
    resource: Any,
    field_map: dict[str, str],
    writeback: WritebackConfig,
    *,
    hub_fields_provisioned: bool = False,
) -> SalesforceConnector:
    if not resource.instance_url:
        raise AuthenticationError(
            f"Salesforce is not configured (CRMHUB_SF_INSTANCE_URL): {SANDBOX_HINT}",
            crm="salesforce",
        )
    auth = auth_from_settings(
        client_id=resource.client_id,
        client_secret=resource.client_secret,
        refresh_token=resource.refresh_token,
        username=resource.username,
        password=resource.password,
        security_token=resource.security_token,
        jwt_key_file=resource.jwt_key_file,
        session_id=resource.session_id,
    )
    # A provisioned hub needs no periodic describe looking for hub fields not yet created.
    describe: dict[str, Any] = (
        {"hub_describe_interval_hours": 0.0} if hub_fields_provisioned else {}
    )
    config = SalesforceConfig(
        instance_url=resource.instance_url,
        auth=auth,
        token_url=resource.token_url,
        ca_bundle=resource.ca_bundle or None,
        budget_share=resource.budget_share,
        page_size=resource.page_size,
        bulk_threshold=resource.bulk_threshold,
        field_map=field_map,
        hub_fields=tuple(writeback.specs()),
        hub_field_names=writeback.salesforce_names,
        **describe,
    )
    return SalesforceConnector(config)


def build_hubspot(
    resource: Any, field_map: dict[str, str], writeback: WritebackConfig
) -> HubSpotConnector:
    if not (resource.access_token or resource.refresh_token):
        raise AuthenticationError(
            f"HubSpot is not configured (CRMHUB_HS_ACCESS_TOKEN): {SANDBOX_HINT}", crm="hubspot"
        )
    config = HubSpotConfig(
        base_url=resource.base_url,
        access_token=resource.access_token or None,
        client_id=resource.client_id or None,
        client_secret=resource.client_secret or None,
        refresh_token=resource.refresh_token or None,
        ca_bundle=resource.ca_bundle or None,
        budget_share=resource.budget_share,
        burst_limit=resource.burst_limit,
        search_per_second=resource.search_per_second,
        rate_limit_store=resource.limiter_store(),
        archived_check_interval_seconds=float(resource.archived_check_interval_seconds),
        first_sync_plan=resource.first_sync_plan,
        write_concurrency=resource.write_concurrency,
        field_map=field_map,
        hub_fields=tuple(writeback.specs()),
        contact_hub_fields=tuple(writeback.contact_specs()),
        hub_field_names=writeback.hubspot_names,
    )
    return HubSpotConnector(config)
