"""A ``hubspot.Client`` pointed at the sandbox: what tests use to drive the real SDK.

How hubspot-api-client 12.0.0 reaches a local TLS server (found by reading the SDK):

- ``hubspot.Client.create(**kw)`` only stores ``kw``. Each API property
  (``client.crm.companies.basic_api`` …) builds a *fresh* generated ``Configuration`` and
  ``ApiClient`` through ``DiscoveryBase._default_api_factory``, which ``setattr``s every
  non-None keyword onto the Configuration (``api_key`` and ``retry`` are mapped specially:
  ``retry`` becomes ``configuration.retries``).
- So ``host=`` sets the base URL of every CRM module, and ``ssl_ca_cert=<path>`` is handed to
  ``urllib3.PoolManager(ca_certs=…)`` by each module's ``rest.RESTClientObject``;
  ``verify_ssl`` (default True) gives ``cert_reqs=CERT_REQUIRED``. Setting attributes on
  ``client.api_client.configuration`` after the fact does nothing useful, because every property
  access builds a new ApiClient whose PoolManager is created in its constructor.
- urllib3 does not read ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` (that is ``requests``), so the
  machine's CA environment variables cannot silently override ``ssl_ca_cert`` here.
- ``client_side_validation=True`` is just another Configuration attribute: the generated models
  then raise ``ValueError`` for a missing required field or an unknown enum value.
- ``retry=urllib3.util.retry.Retry(...)`` goes to the PoolManager. Its default
  ``allowed_methods`` leave out POST and PATCH, so search and batch calls are not retried unless
  ``allowed_methods=None`` is passed.
"""

from __future__ import annotations

from typing import Any

import hubspot

from sandbox.runner import SandboxInfo


def sandbox_client(info: SandboxInfo, **kw: Any) -> hubspot.Client:
    """A real SDK client for the sandbox portal; ``kw`` overrides (``access_token``, ``retry``…).

    Defaults: the sandbox's all-scopes token, the sandbox CA, and strict client-side validation.
    """
    options: dict[str, Any] = {
        "access_token": info.hs_token,
        "host": info.hubspot_url,
        "ssl_ca_cert": info.ca_bundle,
        "client_side_validation": True,
    }
    options.update(kw)
    return hubspot.Client.create(**options)


def _api_exceptions() -> tuple[type[Any], ...]:
    """Each generated SDK module has its *own* ``ApiException`` class (no common base besides
    ``Exception``), so code catching SDK errors must name every module it calls."""
    from hubspot.crm.associations.v4 import exceptions as v4
    from hubspot.crm.companies import exceptions as companies
    from hubspot.crm.contacts import exceptions as contacts
    from hubspot.crm.deals import exceptions as deals
    from hubspot.crm.objects import exceptions as objects
    from hubspot.crm.objects.emails import exceptions as emails
    from hubspot.crm.owners import exceptions as owners
    from hubspot.crm.properties import exceptions as props
    from hubspot.crm.tickets import exceptions as tickets
    from hubspot.oauth import exceptions as oauth

    modules = (v4, companies, contacts, deals, objects, emails, owners, props, tickets, oauth)
    return tuple(m.ApiException for m in modules)


#: The ``ApiException`` classes of every SDK module the hub uses (catch them all at once).
API_EXCEPTIONS: tuple[type[Any], ...] = _api_exceptions()
