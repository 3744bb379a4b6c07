"""The objects and fields the sandbox CRMs hold: one catalogue shared by both emulators and the generator.

Why one file: the Salesforce emulator answers ``describe`` from it, the HubSpot emulator answers the
properties API from it, and the data generator fills exactly these fields. Keeping them in one place
means a field the generator writes is always a field the emulators admit to, as in a real org/portal.

Field names follow the real CRMs (standard objects and properties), plus a few custom fields that a
typical B2B SaaS org adds (contracted modules, usage, go-live date). The hub's own writeback fields
are *not* listed here: the hub provisions them through the Tooling/properties API at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

# --------------------------------------------------------------------------------------------
# Salesforce
# --------------------------------------------------------------------------------------------

#: Products / business areas a customer can contract. Used by both CRMs' custom fields.
MODULES: tuple[str, ...] = ("Billing", "Reporting", "Payroll", "Analytics", "Integrations")

SF_OPPORTUNITY_STAGES: tuple[tuple[str, int, bool, bool], ...] = (
    # (StageName, Probability, IsClosed, IsWon) — Salesforce's default sales process
    ("Prospecting", 10, False, False),
    ("Qualification", 20, False, False),
    ("Needs Analysis", 30, False, False),
    ("Value Proposition", 50, False, False),
    ("Proposal/Price Quote", 75, False, False),
    ("Negotiation/Review", 90, False, False),
    ("Closed Won", 100, True, True),
    ("Closed Lost", 0, True, False),
)

SF_CASE_PRIORITIES: tuple[str, ...] = ("Critical", "High", "Medium", "Low")
SF_CASE_TYPES: tuple[str, ...] = ("Defect", "User Error", "Question", "Feature Request")
SF_CASE_STATUSES: tuple[str, ...] = ("New", "Working", "Escalated", "Closed")


@dataclass(frozen=True)
class SfField:
    """One Salesforce field as ``describe`` reports it.

    ``type`` uses Salesforce's describe types: id, string, textarea, url, email, phone, picklist,
    multipicklist, boolean, int, double, currency, percent, date, datetime, reference, address.
    """

    name: str
    type: str
    label: str = ""
    length: int = 0
    custom: bool = False
    updateable: bool = True
    createable: bool = True
    nillable: bool = True
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    compound_field_name: str | None = None
    external_id: bool = False


def _sys(*extra: SfField) -> list[SfField]:
    """System fields every queryable Salesforce object carries."""
    return [
        SfField("Id", "id", "Record ID", 18, updateable=False, createable=False, nillable=False),
        SfField("IsDeleted", "boolean", "Deleted", updateable=False, createable=False),
        SfField("CreatedDate", "datetime", "Created Date", updateable=False, createable=False),
        SfField(
            "CreatedById",
            "reference",
            "Created By ID",
            18,
            updateable=False,
            createable=False,
            reference_to=("User",),
            relationship_name="CreatedBy",
        ),
        SfField(
            "LastModifiedDate", "datetime", "Last Modified Date", updateable=False, createable=False
        ),
        SfField(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            18,
            updateable=False,
            createable=False,
            reference_to=("User",),
            relationship_name="LastModifiedBy",
        ),
        SfField(
            "SystemModstamp", "datetime", "System Modstamp", updateable=False, createable=False
        ),
        *extra,
    ]


def _owner() -> SfField:
    return SfField(
        "OwnerId", "reference", "Owner ID", 18, reference_to=("User",), relationship_name="Owner"
    )


def _address(prefix: str) -> list[SfField]:
    comp = f"{prefix}Address"
    return [
        SfField(f"{prefix}Street", "textarea", f"{prefix} Street", 255, compound_field_name=comp),
        SfField(f"{prefix}City", "string", f"{prefix} City", 40, compound_field_name=comp),
        SfField(
            f"{prefix}State", "string", f"{prefix} State/Province", 80, compound_field_name=comp
        ),
        SfField(
            f"{prefix}PostalCode",
            "string",
            f"{prefix} Zip/Postal Code",
            20,
            compound_field_name=comp,
        ),
        SfField(f"{prefix}Country", "string", f"{prefix} Country", 80, compound_field_name=comp),
        SfField(
            f"{prefix}CountryCode",
            "picklist",
            f"{prefix} Country Code",
            10,
            compound_field_name=comp,
        ),
        SfField(comp, "address", f"{prefix} Address", updateable=False, createable=False),
    ]


SF_OBJECTS: dict[str, dict[str, object]] = {
    # name: {"prefix": key prefix, "label": ..., "fields": [...]}
    "User": {
        "prefix": "005",
        "label": "User",
        "fields": _sys(
            SfField("Username", "string", "Username", 80, nillable=False),
            SfField("Email", "email", "Email", 128),
            SfField("FirstName", "string", "First Name", 40),
            SfField("LastName", "string", "Last Name", 80),
            SfField("Name", "string", "Full Name", 121, updateable=False, createable=False),
            SfField("IsActive", "boolean", "Active"),
            SfField("Title", "string", "Title", 80),
            SfField("Department", "string", "Department", 80),
        ),
    },
    "Account": {
        "prefix": "001",
        "label": "Account",
        "fields": _sys(
            SfField("Name", "string", "Account Name", 255, nillable=False),
            SfField("Website", "url", "Website", 255),
            SfField("Phone", "phone", "Account Phone", 40),
            SfField(
                "Industry",
                "picklist",
                "Industry",
                255,
                picklist=(
                    "Technology",
                    "Manufacturing",
                    "Retail",
                    "Finance",
                    "Healthcare",
                    "Education",
                    "Media",
                    "Logistics",
                    "Energy",
                    "Services",
                ),
            ),
            SfField(
                "Type",
                "picklist",
                "Account Type",
                255,
                picklist=(
                    "Prospect",
                    "Customer - Direct",
                    "Customer - Channel",
                    "Partner",
                    "Other",
                ),
            ),
            *_address("Billing"),
            SfField("NumberOfEmployees", "int", "Employees"),
            SfField("AnnualRevenue", "currency", "Annual Revenue"),
            _owner(),
            SfField(
                "LastActivityDate", "date", "Last Activity", updateable=False, createable=False
            ),
            # Custom fields a SaaS org typically keeps on Account.
            SfField(
                "HubSpot_Company_Id__c",
                "string",
                "HubSpot Company ID",
                30,
                custom=True,
                external_id=True,
            ),
            SfField("Go_Live_Date__c", "date", "Go-Live Date", custom=True),
            SfField("Onboarding_Completed__c", "boolean", "Onboarding Completed", custom=True),
            SfField(
                "Contracted_Modules__c",
                "multipicklist",
                "Contracted Modules",
                4099,
                custom=True,
                picklist=MODULES,
            ),
            SfField(
                "Modules_In_Use__c",
                "multipicklist",
                "Modules In Use",
                4099,
                custom=True,
                picklist=MODULES,
            ),
            SfField("Usage_Score__c", "percent", "Usage Score", custom=True),
        ),
    },
    "Contact": {
        "prefix": "003",
        "label": "Contact",
        "fields": _sys(
            SfField(
                "AccountId",
                "reference",
                "Account ID",
                18,
                reference_to=("Account",),
                relationship_name="Account",
            ),
            SfField("FirstName", "string", "First Name", 40),
            SfField("LastName", "string", "Last Name", 80, nillable=False),
            SfField("Name", "string", "Full Name", 121, updateable=False, createable=False),
            SfField("Email", "email", "Email", 80),
            SfField("Phone", "phone", "Business Phone", 40),
            SfField("Title", "string", "Title", 128),
            SfField(
                "LeadSource",
                "picklist",
                "Lead Source",
                255,
                picklist=("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"),
            ),
            _owner(),
        ),
    },
    "Lead": {
        "prefix": "00Q",
        "label": "Lead",
        "fields": _sys(
            SfField("FirstName", "string", "First Name", 40),
            SfField("LastName", "string", "Last Name", 80, nillable=False),
            SfField("Name", "string", "Full Name", 121, updateable=False, createable=False),
            SfField("Company", "string", "Company", 255, nillable=False),
            SfField("Email", "email", "Email", 80),
            SfField("Website", "url", "Website", 255),
            SfField(
                "Status",
                "picklist",
                "Lead Status",
                255,
                picklist=(
                    "Open - Not Contacted",
                    "Working - Contacted",
                    "Closed - Converted",
                    "Closed - Not Converted",
                ),
            ),
            SfField(
                "LeadSource",
                "picklist",
                "Lead Source",
                255,
                picklist=("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"),
            ),
            SfField("IsConverted", "boolean", "Converted", updateable=False),
            SfField(
                "ConvertedAccountId",
                "reference",
                "Converted Account ID",
                18,
                reference_to=("Account",),
                relationship_name="ConvertedAccount",
                updateable=False,
            ),
            _owner(),
        ),
    },
    "Opportunity": {
        "prefix": "006",
        "label": "Opportunity",
        "fields": _sys(
            SfField(
                "AccountId",
                "reference",
                "Account ID",
                18,
                reference_to=("Account",),
                relationship_name="Account",
            ),
            SfField("Name", "string", "Name", 120, nillable=False),
            SfField(
                "StageName",
                "picklist",
                "Stage",
                255,
                nillable=False,
                picklist=tuple(s[0] for s in SF_OPPORTUNITY_STAGES),
            ),
            SfField("Amount", "currency", "Amount"),
            SfField("Probability", "percent", "Probability (%)"),
            SfField("CloseDate", "date", "Close Date", nillable=False),
            SfField("IsClosed", "boolean", "Closed", updateable=False, createable=False),
            SfField("IsWon", "boolean", "Won", updateable=False, createable=False),
            SfField(
                "Type",
                "picklist",
                "Opportunity Type",
                255,
                picklist=(
                    "New Business",
                    "Existing Business - Upgrade",
                    "Existing Business - Renewal",
                ),
            ),
            SfField(
                "LastStageChangeDate",
                "datetime",
                "Last Stage Change Date",
                updateable=False,
                createable=False,
            ),
            SfField("Contract_Term_Months__c", "double", "Contract Term (Months)", custom=True),
            _owner(),
        ),
    },
    "OpportunityHistory": {
        "prefix": "008",
        "label": "Opportunity History",
        "fields": _sys(
            SfField(
                "OpportunityId",
                "reference",
                "Opportunity ID",
                18,
                reference_to=("Opportunity",),
                relationship_name="Opportunity",
                updateable=False,
            ),
            SfField(
                "StageName",
                "picklist",
                "Stage",
                255,
                updateable=False,
                picklist=tuple(s[0] for s in SF_OPPORTUNITY_STAGES),
            ),
            SfField("Amount", "currency", "Amount", updateable=False),
            SfField("CloseDate", "date", "Close Date", updateable=False),
        ),
    },
    # Field history of Account (history tracking on for Owner): one row per tracked change,
    # written by the org itself, never by the API. No LastModifiedDate/SystemModstamp: a history
    # row never changes, so CreatedDate is its only time. An Owner change writes two rows, as
    # real orgs do for lookup fields: the ids (DataType "EntityId") and the names ("Text").
    "AccountHistory": {
        "prefix": "017",
        "label": "Account History",
        "fields": [
            SfField(
                "Id",
                "id",
                "Account History ID",
                18,
                updateable=False,
                createable=False,
                nillable=False,
            ),
            SfField("IsDeleted", "boolean", "Deleted", updateable=False, createable=False),
            SfField(
                "AccountId",
                "reference",
                "Account ID",
                18,
                reference_to=("Account",),
                relationship_name="Account",
                updateable=False,
                createable=False,
            ),
            SfField(
                "CreatedById",
                "reference",
                "Created By ID",
                18,
                updateable=False,
                createable=False,
                reference_to=("User",),
                relationship_name="CreatedBy",
            ),
            SfField("CreatedDate", "datetime", "Created Date", updateable=False, createable=False),
            SfField(
                "Field",
                "picklist",
                "Changed Field",
                255,
                updateable=False,
                createable=False,
                picklist=("Owner", "created", "Name", "Type"),
            ),
            SfField(
                "DataType",
                "picklist",
                "Data Type",
                40,
                updateable=False,
                createable=False,
                picklist=("EntityId", "Text"),
            ),
            SfField("OldValue", "anyType", "Old Value", 255, updateable=False, createable=False),
            SfField("NewValue", "anyType", "New Value", 255, updateable=False, createable=False),
        ],
    },
    "Case": {
        "prefix": "500",
        "label": "Case",
        "fields": _sys(
            SfField("CaseNumber", "string", "Case Number", 30, updateable=False, createable=False),
            SfField(
                "AccountId",
                "reference",
                "Account ID",
                18,
                reference_to=("Account",),
                relationship_name="Account",
            ),
            SfField(
                "ContactId",
                "reference",
                "Contact ID",
                18,
                reference_to=("Contact",),
                relationship_name="Contact",
            ),
            SfField("Subject", "string", "Subject", 255),
            SfField("Status", "picklist", "Status", 255, picklist=SF_CASE_STATUSES),
            SfField("Priority", "picklist", "Priority", 255, picklist=SF_CASE_PRIORITIES),
            SfField("Type", "picklist", "Case Type", 255, picklist=SF_CASE_TYPES),
            SfField("Origin", "picklist", "Case Origin", 255, picklist=("Email", "Phone", "Web")),
            SfField("IsClosed", "boolean", "Closed", updateable=False, createable=False),
            SfField("ClosedDate", "datetime", "Closed Date", updateable=False, createable=False),
            SfField("CSAT__c", "double", "Customer Satisfaction (1-5)", custom=True),
            _owner(),
        ),
    },
    "EmailMessage": {
        "prefix": "02s",
        "label": "Email Message",
        "fields": _sys(
            SfField(
                "ParentId",
                "reference",
                "Case ID",
                18,
                reference_to=("Case",),
                relationship_name="Parent",
            ),
            SfField(
                "RelatedToId",
                "reference",
                "Related To ID",
                18,
                reference_to=("Account", "Opportunity"),
                relationship_name="RelatedTo",
            ),
            SfField(
                "ActivityId",
                "reference",
                "Activity ID",
                18,
                reference_to=("Task",),
                relationship_name="Activity",
            ),
            SfField("ThreadIdentifier", "string", "Thread Identifier", 255),
            SfField("Subject", "string", "Subject", 3000),
            SfField("FromAddress", "email", "From Address", 1000),
            SfField("ToAddress", "string", "To Address", 4000),
            SfField("Incoming", "boolean", "Is Incoming"),
            SfField("MessageDate", "datetime", "Message Date"),
            SfField("Status", "picklist", "Status", 40, picklist=("0", "1", "2", "3", "4", "5")),
        ),
    },
    "Task": {
        "prefix": "00T",
        "label": "Task",
        "fields": _sys(
            SfField(
                "WhatId",
                "reference",
                "Related To ID",
                18,
                reference_to=("Account", "Opportunity", "Case"),
                relationship_name="What",
            ),
            SfField(
                "WhoId",
                "reference",
                "Name ID",
                18,
                reference_to=("Contact", "Lead"),
                relationship_name="Who",
            ),
            SfField(
                "AccountId",
                "reference",
                "Account ID",
                18,
                reference_to=("Account",),
                relationship_name="Account",
                updateable=False,
                createable=False,
            ),
            SfField("Subject", "string", "Subject", 255),
            SfField(
                "TaskSubtype", "picklist", "Task Subtype", 40, picklist=("Task", "Email", "Call")
            ),
            SfField("ActivityDate", "date", "Due Date Only"),
            SfField(
                "Status",
                "picklist",
                "Status",
                40,
                picklist=("Not Started", "In Progress", "Completed"),
            ),
            SfField("CallDurationInSeconds", "int", "Call Duration"),
            _owner(),
        ),
    },
}


# ---- standard objects every org has, served and seeded but not read by the hub -------------


def _ref(
    name: str,
    label: str,
    to: tuple[str, ...],
    relationship: str,
    *,
    nillable: bool = True,
    writable: bool = True,
) -> SfField:
    """A lookup field (``…Id``) with the relationship name SOQL's dot notation uses."""
    return SfField(
        name,
        "reference",
        label,
        18,
        nillable=nillable,
        reference_to=to,
        relationship_name=relationship,
        updateable=writable,
        createable=writable,
    )


def _derived(name: str, type_: str, label: str, length: int = 0) -> SfField:
    """A field the org computes (rolled up or copied from a parent): read-only over the API."""
    return SfField(name, type_, label, length, updateable=False, createable=False)


SF_EVENT_TYPES: tuple[str, ...] = ("Call", "Email", "Meeting", "Other")
SF_CAMPAIGN_TYPES: tuple[str, ...] = (
    "Conference",
    "Webinar",
    "Trade Show",
    "Public Relations",
    "Partners",
    "Referral Program",
    "Advertisement",
    "Banner Ads",
    "Direct Mail",
    "Email",
    "Telemarketing",
    "Other",
)
SF_CAMPAIGN_STATUSES: tuple[str, ...] = ("Planned", "In Progress", "Completed", "Aborted")
SF_CONTACT_ROLES: tuple[str, ...] = (
    "Business User",
    "Decision Maker",
    "Economic Buyer",
    "Economic Decision Maker",
    "Evaluator",
    "Executive Sponsor",
    "Influencer",
    "Technical Buyer",
    "Other",
)

SF_OBJECTS.update(
    {
        "UserRole": {
            "prefix": "00E",
            "label": "Role",
            "fields": _sys(
                SfField("Name", "string", "Name", 80, nillable=False),
                SfField("DeveloperName", "string", "Developer Name", 80),
                _ref("ParentRoleId", "Parent Role ID", ("UserRole",), "ParentRole"),
                SfField("RollupDescription", "string", "Description", 80),
                SfField(
                    "OpportunityAccessForAccountOwner",
                    "picklist",
                    "Opportunity Access for Account Owner",
                    40,
                    picklist=("None", "Read", "Edit"),
                ),
            ),
        },
        "Product2": {
            "prefix": "01t",
            "label": "Product",
            "fields": _sys(
                SfField("Name", "string", "Product Name", 255, nillable=False),
                SfField("ProductCode", "string", "Product Code", 255),
                SfField("Description", "textarea", "Product Description", 4000),
                SfField("IsActive", "boolean", "Active"),
                SfField("Family", "picklist", "Product Family", 40, picklist=MODULES),
                SfField(
                    "QuantityUnitOfMeasure",
                    "picklist",
                    "Quantity Unit Of Measure",
                    255,
                    picklist=("Each", "Seat", "Month"),
                ),
                _derived("IsArchived", "boolean", "Archived"),
            ),
        },
        "Pricebook2": {
            "prefix": "01s",
            "label": "Price Book",
            "fields": _sys(
                SfField("Name", "string", "Price Book Name", 255, nillable=False),
                SfField("IsActive", "boolean", "Active"),
                _derived("IsStandard", "boolean", "Is Standard Price Book"),
                SfField("Description", "string", "Description", 255),
            ),
        },
        "PricebookEntry": {
            "prefix": "01u",
            "label": "Price Book Entry",
            "fields": _sys(
                _ref(
                    "Pricebook2Id", "Price Book ID", ("Pricebook2",), "Pricebook2", nillable=False
                ),
                _ref("Product2Id", "Product ID", ("Product2",), "Product2", nillable=False),
                SfField("UnitPrice", "currency", "List Price", nillable=False),
                SfField("IsActive", "boolean", "Active"),
                SfField("UseStandardPrice", "boolean", "Use Standard Price"),
                _derived("Name", "string", "Product Name", 255),
                _derived("ProductCode", "string", "Product Code", 255),
            ),
        },
        "OpportunityLineItem": {
            "prefix": "00k",
            "label": "Opportunity Product",
            "fields": _sys(
                _ref(
                    "OpportunityId",
                    "Opportunity ID",
                    ("Opportunity",),
                    "Opportunity",
                    nillable=False,
                ),
                _ref(
                    "PricebookEntryId", "Price Book Entry ID", ("PricebookEntry",), "PricebookEntry"
                ),
                _ref("Product2Id", "Product ID", ("Product2",), "Product2"),
                _derived("Name", "string", "Opportunity Product Name", 376),
                _derived("ProductCode", "string", "Product Code", 255),
                SfField("Quantity", "double", "Quantity", nillable=False),
                SfField("UnitPrice", "currency", "Sales Price"),
                _derived("ListPrice", "currency", "List Price"),
                _derived("Subtotal", "currency", "Subtotal"),
                SfField("TotalPrice", "currency", "Total Price"),
                SfField("Discount", "percent", "Discount"),
                SfField("ServiceDate", "date", "Date"),
                SfField("Description", "string", "Line Description", 255),
            ),
        },
        "OpportunityContactRole": {
            "prefix": "00K",
            "label": "Opportunity Contact Role",
            "fields": _sys(
                _ref(
                    "OpportunityId",
                    "Opportunity ID",
                    ("Opportunity",),
                    "Opportunity",
                    nillable=False,
                ),
                _ref("ContactId", "Contact ID", ("Contact",), "Contact", nillable=False),
                SfField("Role", "picklist", "Role", 40, picklist=SF_CONTACT_ROLES),
                SfField("IsPrimary", "boolean", "Primary"),
            ),
        },
        "Campaign": {
            "prefix": "701",
            "label": "Campaign",
            "fields": _sys(
                SfField("Name", "string", "Name", 80, nillable=False),
                _ref("ParentId", "Parent Campaign ID", ("Campaign",), "Parent"),
                SfField("Type", "picklist", "Type", 40, picklist=SF_CAMPAIGN_TYPES),
                SfField("Status", "picklist", "Status", 40, picklist=SF_CAMPAIGN_STATUSES),
                SfField("StartDate", "date", "Start Date"),
                SfField("EndDate", "date", "End Date"),
                SfField("IsActive", "boolean", "Active"),
                SfField("BudgetedCost", "currency", "Budgeted Cost in Campaign"),
                SfField("ActualCost", "currency", "Actual Cost in Campaign"),
                SfField("ExpectedRevenue", "currency", "Expected Revenue in Campaign"),
                SfField("ExpectedResponse", "percent", "Expected Response (%)"),
                SfField("NumberSent", "double", "Num Sent in Campaign"),
                _derived("NumberOfLeads", "int", "Leads in Campaign"),
                _derived("NumberOfContacts", "int", "Total Contacts"),
                _derived("NumberOfResponses", "int", "Responses in Campaign"),
                SfField("Description", "textarea", "Description", 32000),
                _owner(),
            ),
        },
        "CampaignMember": {
            "prefix": "00v",
            "label": "Campaign Member",
            "fields": _sys(
                _ref("CampaignId", "Campaign ID", ("Campaign",), "Campaign", nillable=False),
                _ref("ContactId", "Contact ID", ("Contact",), "Contact"),
                _ref("LeadId", "Lead ID", ("Lead",), "Lead"),
                SfField("Status", "picklist", "Status", 40, picklist=("Sent", "Responded")),
                _derived("HasResponded", "boolean", "Responded"),
                _derived("FirstRespondedDate", "date", "First Responded Date"),
                _derived("Type", "string", "Type", 40),
            ),
        },
        "Event": {
            "prefix": "00U",
            "label": "Event",
            "fields": _sys(
                _ref(
                    "WhatId",
                    "Related To ID",
                    ("Account", "Opportunity", "Case", "Campaign"),
                    "What",
                ),
                _ref("WhoId", "Name ID", ("Contact", "Lead"), "Who"),
                _ref("AccountId", "Account ID", ("Account",), "Account", writable=False),
                SfField("Subject", "string", "Subject", 255),
                SfField("Type", "picklist", "Type", 40, picklist=SF_EVENT_TYPES),
                SfField("Location", "string", "Location", 255),
                SfField("StartDateTime", "datetime", "Start Date Time"),
                SfField("EndDateTime", "datetime", "End Date Time"),
                SfField("ActivityDateTime", "datetime", "Due Date Time"),
                SfField("ActivityDate", "date", "Due Date Only"),
                SfField("DurationInMinutes", "int", "Duration"),
                SfField("IsAllDayEvent", "boolean", "All-Day Event"),
                SfField("ShowAs", "picklist", "Show Time As", 40, picklist=("Busy", "Free")),
                SfField("Description", "textarea", "Description", 32000),
                _owner(),
            ),
        },
    }
)

#: The Salesforce standard objects the sandbox serves that the hub itself does not read.
SF_EXTRA_OBJECTS: tuple[str, ...] = (
    "UserRole",
    "Product2",
    "Pricebook2",
    "PricebookEntry",
    "OpportunityLineItem",
    "OpportunityContactRole",
    "Campaign",
    "CampaignMember",
    "Event",
)


def sf_fields(obj: str) -> list[SfField]:
    """The fields of a Salesforce object, standard ones first, in describe order."""
    fields = SF_OBJECTS[obj]["fields"]
    assert isinstance(fields, list)
    return fields


# --------------------------------------------------------------------------------------------
# HubSpot
# --------------------------------------------------------------------------------------------

HS_DEAL_STAGES: tuple[tuple[str, str, float, bool, bool], ...] = (
    # (internal id, label, probability, is_closed, is_won) — HubSpot's default sales pipeline
    ("appointmentscheduled", "Appointment Scheduled", 0.2, False, False),
    ("qualifiedtobuy", "Qualified To Buy", 0.4, False, False),
    ("presentationscheduled", "Presentation Scheduled", 0.6, False, False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", 0.8, False, False),
    ("contractsent", "Contract Sent", 0.9, False, False),
    ("closedwon", "Closed Won", 1.0, True, True),
    ("closedlost", "Closed Lost", 0.0, True, False),
)
HS_TICKET_PRIORITIES: tuple[str, ...] = ("URGENT", "HIGH", "MEDIUM", "LOW")
HS_TICKET_CATEGORIES: tuple[str, ...] = (
    "PRODUCT_ISSUE",
    "BILLING_ISSUE",
    "FEATURE_REQUEST",
    "GENERAL_INQUIRY",
    "USER_ERROR",
)
#: Ticket pipeline stages: id -> (label, is_closed)
HS_TICKET_STAGES: dict[str, tuple[str, bool]] = {
    "1": ("New", False),
    "2": ("Waiting on contact", False),
    "3": ("Waiting on us", False),
    "4": ("Closed", True),
}
HS_LIFECYCLE_STAGES: tuple[str, ...] = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)


@dataclass(frozen=True)
class HsProperty:
    """One HubSpot property as the properties API reports it.

    ``type``: string, number, date, datetime, enumeration, bool. ``field_type``: text, textarea,
    number, date, select, checkbox, booleancheckbox, radio, calculation_equation.
    """

    name: str
    type: str
    field_type: str
    label: str = ""
    group: str = "companyinformation"
    options: tuple[str, ...] = ()
    read_only: bool = False
    unique: bool = False
    hubspot_defined: bool = True
    description: str = ""


def _hs_sys(group: str, lastmod: str = "hs_lastmodifieddate") -> list[HsProperty]:
    return [
        HsProperty(
            "hs_object_id", "number", "number", "Record ID", group, read_only=True, unique=True
        ),
        HsProperty("createdate", "datetime", "date", "Create Date", group, read_only=True),
        HsProperty(lastmod, "datetime", "date", "Last Modified Date", group, read_only=True),
        HsProperty("hubspot_owner_id", "enumeration", "select", "Owner", group),
    ]


def _enum(
    name: str,
    label: str,
    group: str,
    options: tuple[str, ...],
    *,
    multi: bool = False,
    custom: bool = False,
) -> HsProperty:
    return HsProperty(
        name,
        "enumeration",
        "checkbox" if multi else "select",
        label,
        group,
        options=options,
        hubspot_defined=not custom,
    )


HS_OBJECTS: dict[str, dict[str, object]] = {
    # object type: {"type_id": "0-2", "properties": [...]}
    "companies": {
        "type_id": "0-2",
        "singular": "COMPANY",
        "properties": [
            *_hs_sys("companyinformation"),
            HsProperty("name", "string", "text", "Name"),
            HsProperty("domain", "string", "text", "Company Domain Name"),
            HsProperty("website", "string", "text", "Website URL"),
            HsProperty("phone", "string", "text", "Phone Number"),
            HsProperty("industry", "string", "text", "Industry"),
            HsProperty("city", "string", "text", "City"),
            HsProperty("state", "string", "text", "State/Region"),
            HsProperty("country", "string", "text", "Country/Region"),
            HsProperty("zip", "string", "text", "Postal Code"),
            HsProperty("address", "string", "text", "Street Address"),
            HsProperty("numberofemployees", "number", "number", "Number of Employees"),
            HsProperty("annualrevenue", "number", "number", "Annual Revenue"),
            _enum("lifecyclestage", "Lifecycle Stage", "companyinformation", HS_LIFECYCLE_STAGES),
            HsProperty(
                "salesforceaccountid",
                "string",
                "text",
                "Salesforce Account ID",
                "salesforceinformation",
            ),
            HsProperty("go_live_date", "date", "date", "Go-live date", hubspot_defined=False),
            HsProperty(
                "onboarding_completed",
                "bool",
                "booleancheckbox",
                "Onboarding completed",
                options=("true", "false"),
                hubspot_defined=False,
            ),
            _enum(
                "contracted_modules",
                "Contracted modules",
                "companyinformation",
                MODULES,
                multi=True,
                custom=True,
            ),
            _enum(
                "modules_in_use",
                "Modules in use",
                "companyinformation",
                MODULES,
                multi=True,
                custom=True,
            ),
            HsProperty("usage_score", "number", "number", "Usage score", hubspot_defined=False),
            HsProperty(
                "hs_num_open_deals", "number", "number", "Number of open deals", read_only=True
            ),
        ],
    },
    "contacts": {
        "type_id": "0-1",
        "singular": "CONTACT",
        "properties": [
            *_hs_sys("contactinformation", lastmod="lastmodifieddate"),
            HsProperty("email", "string", "text", "Email", "contactinformation", unique=True),
            HsProperty("firstname", "string", "text", "First Name", "contactinformation"),
            HsProperty("lastname", "string", "text", "Last Name", "contactinformation"),
            HsProperty("phone", "string", "text", "Phone Number", "contactinformation"),
            HsProperty("jobtitle", "string", "text", "Job Title", "contactinformation"),
            HsProperty("company", "string", "text", "Company Name", "contactinformation"),
            HsProperty("website", "string", "text", "Website URL", "contactinformation"),
            _enum("lifecyclestage", "Lifecycle Stage", "contactinformation", HS_LIFECYCLE_STAGES),
            HsProperty(
                "hs_lead_status",
                "enumeration",
                "radio",
                "Lead Status",
                "contactinformation",
                options=("NEW", "OPEN", "IN_PROGRESS", "CONNECTED", "UNQUALIFIED"),
            ),
            HsProperty(
                "hs_email_last_send_date",
                "datetime",
                "date",
                "Last marketing email send date",
                "emailinformation",
                read_only=True,
            ),
            HsProperty(
                "hs_email_last_email_name",
                "string",
                "text",
                "Last marketing email name",
                "emailinformation",
                read_only=True,
            ),
            HsProperty(
                "salesforcecontactid",
                "string",
                "text",
                "Salesforce Contact ID",
                "salesforceinformation",
            ),
        ],
    },
    "deals": {
        "type_id": "0-3",
        "singular": "DEAL",
        "properties": [
            *_hs_sys("dealinformation"),
            HsProperty("dealname", "string", "text", "Deal Name", "dealinformation"),
            HsProperty("amount", "number", "number", "Amount", "dealinformation"),
            HsProperty(
                "pipeline",
                "enumeration",
                "select",
                "Pipeline",
                "dealinformation",
                options=("default",),
            ),
            _enum(
                "dealstage", "Deal Stage", "dealinformation", tuple(s[0] for s in HS_DEAL_STAGES)
            ),
            HsProperty("closedate", "datetime", "date", "Close Date", "dealinformation"),
            HsProperty(
                "dealtype",
                "enumeration",
                "radio",
                "Deal Type",
                "dealinformation",
                options=("newbusiness", "existingbusiness"),
            ),
            HsProperty(
                "hs_is_closed",
                "bool",
                "booleancheckbox",
                "Is Deal Closed?",
                "dealinformation",
                options=("true", "false"),
                read_only=True,
            ),
            HsProperty(
                "hs_is_closed_won",
                "bool",
                "booleancheckbox",
                "Is Closed Won",
                "dealinformation",
                options=("true", "false"),
                read_only=True,
            ),
            *[
                HsProperty(
                    f"hs_v2_date_entered_{s[0]}",
                    "datetime",
                    "date",
                    f"Date entered '{s[1]} (Sales Pipeline)'",
                    "dealinformation",
                    read_only=True,
                )
                for s in HS_DEAL_STAGES
            ],
            HsProperty(
                "contract_term_months",
                "number",
                "number",
                "Contract term (months)",
                "dealinformation",
                hubspot_defined=False,
            ),
            HsProperty(
                "salesforceopportunityid",
                "string",
                "text",
                "Salesforce Opportunity ID",
                "salesforceinformation",
            ),
        ],
    },
    "tickets": {
        "type_id": "0-5",
        "singular": "TICKET",
        "properties": [
            *_hs_sys("ticketinformation"),
            HsProperty("subject", "string", "text", "Ticket name", "ticketinformation"),
            HsProperty("content", "string", "textarea", "Ticket description", "ticketinformation"),
            HsProperty(
                "hs_pipeline",
                "enumeration",
                "select",
                "Pipeline",
                "ticketinformation",
                options=("0",),
            ),
            _enum(
                "hs_pipeline_stage", "Ticket status", "ticketinformation", tuple(HS_TICKET_STAGES)
            ),
            _enum("hs_ticket_priority", "Priority", "ticketinformation", HS_TICKET_PRIORITIES),
            _enum("hs_ticket_category", "Category", "ticketinformation", HS_TICKET_CATEGORIES),
            HsProperty("closed_date", "datetime", "date", "Close date", "ticketinformation"),
            HsProperty(
                "hs_customer_satisfaction",
                "number",
                "number",
                "Customer satisfaction (1-5)",
                "ticketinformation",
                hubspot_defined=False,
            ),
            HsProperty(
                "source_type",
                "enumeration",
                "select",
                "Source",
                "ticketinformation",
                options=("EMAIL", "PHONE", "FORM", "CHAT"),
            ),
        ],
    },
    "emails": {
        "type_id": "0-49",
        "singular": "EMAIL",
        "properties": [
            *_hs_sys("emailinformation"),
            HsProperty("hs_timestamp", "datetime", "date", "Activity date", "emailinformation"),
            _enum(
                "hs_email_direction",
                "Email direction",
                "emailinformation",
                ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"),
            ),
            HsProperty("hs_email_subject", "string", "text", "Email subject", "emailinformation"),
            HsProperty("hs_email_from_email", "string", "text", "From email", "emailinformation"),
            HsProperty("hs_email_to_email", "string", "text", "To email", "emailinformation"),
            HsProperty("hs_email_thread_id", "string", "text", "Thread ID", "emailinformation"),
            _enum(
                "hs_email_status",
                "Email send status",
                "emailinformation",
                ("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"),
            ),
        ],
    },
}

# ---- objects every portal has, served and seeded but not read by the hub ---------------------

HS_CALL_STATUSES: tuple[str, ...] = (
    "BUSY",
    "CALLING_CRM_USER",
    "CANCELED",
    "COMPLETED",
    "CONNECTING",
    "FAILED",
    "IN_PROGRESS",
    "NO_ANSWER",
    "QUEUED",
    "RINGING",
)
HS_MEETING_OUTCOMES: tuple[str, ...] = (
    "SCHEDULED",
    "COMPLETED",
    "RESCHEDULED",
    "NO_SHOW",
    "CANCELED",
)
HS_TASK_STATUSES: tuple[str, ...] = (
    "NOT_STARTED",
    "IN_PROGRESS",
    "WAITING",
    "COMPLETED",
    "DEFERRED",
)
HS_QUOTE_STATUSES: tuple[str, ...] = (
    "DRAFT",
    "APPROVAL_NOT_NEEDED",
    "PENDING_APPROVAL",
    "APPROVED",
    "REJECTED",
)
HS_BILLING_FREQUENCIES: tuple[str, ...] = ("monthly", "quarterly", "per_six_months", "annually")


def _text(name: str, label: str, group: str, field_type: str = "text") -> HsProperty:
    return HsProperty(name, "string", field_type, label, group)


def _num(name: str, label: str, group: str, *, read_only: bool = False) -> HsProperty:
    return HsProperty(name, "number", "number", label, group, read_only=read_only)


def _when(name: str, label: str, group: str) -> HsProperty:
    return HsProperty(name, "datetime", "date", label, group)


HS_OBJECTS.update(
    {
        "calls": {
            "type_id": "0-48",
            "singular": "CALL",
            "properties": [
                *_hs_sys("engagement"),
                _when("hs_timestamp", "Activity date", "engagement"),
                _text("hs_call_title", "Call title", "engagement"),
                _text("hs_call_body", "Call notes", "engagement", "textarea"),
                _enum("hs_call_direction", "Call direction", "engagement", ("INBOUND", "OUTBOUND")),
                _num("hs_call_duration", "Call duration (ms)", "engagement"),
                _enum("hs_call_status", "Call status", "engagement", HS_CALL_STATUSES),
                _text("hs_call_disposition", "Call outcome", "engagement"),
                _text("hs_call_from_number", "From number", "engagement"),
                _text("hs_call_to_number", "To number", "engagement"),
            ],
        },
        "meetings": {
            "type_id": "0-47",
            "singular": "MEETING",
            "properties": [
                *_hs_sys("engagement"),
                _when("hs_timestamp", "Activity date", "engagement"),
                _text("hs_meeting_title", "Meeting name", "engagement"),
                _text("hs_meeting_body", "Meeting description", "engagement", "textarea"),
                _when("hs_meeting_start_time", "Start time", "engagement"),
                _when("hs_meeting_end_time", "End time", "engagement"),
                _enum("hs_meeting_outcome", "Meeting outcome", "engagement", HS_MEETING_OUTCOMES),
                _text("hs_meeting_location", "Location", "engagement"),
                _text("hs_activity_type", "Call and meeting type", "engagement"),
            ],
        },
        "notes": {
            "type_id": "0-46",
            "singular": "NOTE",
            "properties": [
                *_hs_sys("engagement"),
                _when("hs_timestamp", "Activity date", "engagement"),
                _text("hs_note_body", "Note body", "engagement", "textarea"),
            ],
        },
        "tasks": {
            "type_id": "0-27",
            "singular": "TASK",
            "properties": [
                *_hs_sys("engagement"),
                _when("hs_timestamp", "Due date", "engagement"),
                _text("hs_task_subject", "Task title", "engagement"),
                _text("hs_task_body", "Notes", "engagement", "textarea"),
                _enum("hs_task_status", "Task status", "engagement", HS_TASK_STATUSES),
                _enum(
                    "hs_task_priority", "Priority", "engagement", ("NONE", "LOW", "MEDIUM", "HIGH")
                ),
                _enum("hs_task_type", "Task type", "engagement", ("CALL", "EMAIL", "TODO")),
                HsProperty(
                    "hs_task_completion_date",
                    "datetime",
                    "date",
                    "Completed at",
                    "engagement",
                    read_only=True,
                ),
            ],
        },
        "products": {
            "type_id": "0-7",
            "singular": "PRODUCT",
            "properties": [
                *_hs_sys("productinformation"),
                _text("name", "Name", "productinformation"),
                _text("description", "Description", "productinformation", "textarea"),
                _num("price", "Unit price", "productinformation"),
                _text("hs_sku", "SKU", "productinformation"),
                _num("hs_cost_of_goods_sold", "Unit cost", "productinformation"),
                _text("hs_recurring_billing_period", "Term", "productinformation"),
                _enum(
                    "recurringbillingfrequency",
                    "Billing frequency",
                    "productinformation",
                    HS_BILLING_FREQUENCIES,
                ),
                _enum(
                    "hs_product_type",
                    "Product type",
                    "productinformation",
                    ("service", "inventory", "non_inventory"),
                ),
            ],
        },
        "line_items": {
            "type_id": "0-8",
            "singular": "LINE_ITEM",
            "properties": [
                *_hs_sys("lineiteminformation"),
                _text("name", "Name", "lineiteminformation"),
                _text("hs_product_id", "Product ID", "lineiteminformation"),
                _num("quantity", "Quantity", "lineiteminformation"),
                _num("price", "Unit price", "lineiteminformation"),
                _num("discount", "Unit discount", "lineiteminformation"),
                _num("amount", "Net price", "lineiteminformation", read_only=True),
                _text("hs_sku", "SKU", "lineiteminformation"),
                _text("hs_recurring_billing_period", "Term", "lineiteminformation"),
                _enum(
                    "recurringbillingfrequency",
                    "Billing frequency",
                    "lineiteminformation",
                    HS_BILLING_FREQUENCIES,
                ),
            ],
        },
        "quotes": {
            "type_id": "0-14",
            "singular": "QUOTE",
            "properties": [
                *_hs_sys("quoteinformation"),
                _text("hs_title", "Quote name", "quoteinformation"),
                HsProperty(
                    "hs_expiration_date", "date", "date", "Expiration date", "quoteinformation"
                ),
                _enum("hs_status", "Quote approval status", "quoteinformation", HS_QUOTE_STATUSES),
                _num("hs_quote_amount", "Quote amount", "quoteinformation", read_only=True),
                _text("hs_currency", "Currency", "quoteinformation"),
                _text("hs_sender_email", "Sender email", "quoteinformation"),
                _text("hs_language", "Language", "quoteinformation"),
            ],
        },
    }
)

#: The HubSpot object types the sandbox serves that the hub itself does not read.
HS_EXTRA_OBJECTS: tuple[str, ...] = (
    "calls",
    "meetings",
    "notes",
    "tasks",
    "products",
    "line_items",
    "quotes",
)

#: HubSpot v4 association type ids (HUBSPOT_DEFINED), keyed by (from, to).
#: Values: (typeId of the unlabelled association, typeId of the "Primary" label or None).
HS_ASSOCIATION_TYPES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1),
    ("companies", "contacts"): (280, 2),
    ("deals", "companies"): (341, 5),
    ("companies", "deals"): (342, 6),
    ("deals", "contacts"): (3, None),
    ("contacts", "deals"): (4, None),
    ("tickets", "companies"): (339, 26),
    ("companies", "tickets"): (340, 25),
    ("tickets", "contacts"): (16, None),
    ("contacts", "tickets"): (15, None),
    ("emails", "contacts"): (198, None),
    ("contacts", "emails"): (197, None),
    ("emails", "companies"): (186, None),
    ("companies", "emails"): (185, None),
    ("emails", "deals"): (210, None),
    ("deals", "emails"): (209, None),
    # engagements (calls, meetings, notes, tasks) with contacts, companies and deals
    ("calls", "contacts"): (194, None),
    ("contacts", "calls"): (193, None),
    ("calls", "companies"): (182, None),
    ("companies", "calls"): (181, None),
    ("calls", "deals"): (206, None),
    ("deals", "calls"): (205, None),
    ("meetings", "contacts"): (200, None),
    ("contacts", "meetings"): (199, None),
    ("meetings", "companies"): (188, None),
    ("companies", "meetings"): (187, None),
    ("meetings", "deals"): (212, None),
    ("deals", "meetings"): (211, None),
    ("notes", "contacts"): (202, None),
    ("contacts", "notes"): (201, None),
    ("notes", "companies"): (190, None),
    ("companies", "notes"): (189, None),
    ("notes", "deals"): (214, None),
    ("deals", "notes"): (213, None),
    ("tasks", "contacts"): (204, None),
    ("contacts", "tasks"): (203, None),
    ("tasks", "companies"): (192, None),
    ("companies", "tasks"): (191, None),
    ("tasks", "deals"): (216, None),
    ("deals", "tasks"): (215, None),
    # commerce: line items and quotes on deals
    ("line_items", "deals"): (20, None),
    ("deals", "line_items"): (19, None),
    ("quotes", "deals"): (64, None),
    ("deals", "quotes"): (63, None),
    ("quotes", "line_items"): (67, None),
    ("line_items", "quotes"): (68, None),
    ("quotes", "contacts"): (69, None),
    ("contacts", "quotes"): (70, None),
    ("quotes", "companies"): (71, None),
    ("companies", "quotes"): (72, None),
}


def hs_properties(obj: str) -> list[HsProperty]:
    """The properties of a HubSpot object type, in the properties API's order."""
    props = HS_OBJECTS[obj]["properties"]
    assert isinstance(props, list)
    return props


def hs_lastmodified_property(obj: str) -> str:
    """HubSpot's last-modified property: ``lastmodifieddate`` on contacts, else ``hs_…``."""
    return "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"


#: Owner fields (owners API, not a CRM object with properties).
HS_OWNER_FIELDS: tuple[str, ...] = ("id", "email", "firstName", "lastName", "userId")


@dataclass
class Profile:
    """A data-volume profile for the generator."""

    name: str
    customers: int
    owners: int = 8
    #: share of customers present in both CRMs / only Salesforce / only HubSpot
    both_share: float = 0.45
    sf_only_share: float = 0.30
    extra: dict[str, float] = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    "tiny": Profile("tiny", customers=40, owners=4),
    "demo": Profile("demo", customers=1000, owners=12),
    "large": Profile("large", customers=100_000, owners=120),
    # Growth profiles of the end-to-end benchmark (benchmarks/sync_e2e.py): `large` scaled.
    "2x": Profile("2x", customers=200_000, owners=240),
    "4x": Profile("4x", customers=400_000, owners=480),
}


#: the columns of a stored Salesforce row that are not fields of its object
SF_ROW_FIELDS = frozenset({"Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"})


@cache
def sf_template(obj: str) -> dict[str, Any]:
    """Every storable field of a Salesforce object, all ``None``: the start of each record."""
    return {f.name: None for f in sf_fields(obj) if f.name not in SF_ROW_FIELDS}


@cache
def hs_template(obj: str) -> dict[str, Any]:
    """Every storable property of a HubSpot object type, all ``None``."""
    skip = {"hs_object_id", "createdate", hs_lastmodified_property(obj)}
    return {p.name: None for p in hs_properties(obj) if p.name not in skip}
