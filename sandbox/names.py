"""Word lists for the sandbox data generator: company names, people, places, mail domains.

Why a module of its own: the generator's realism (and thus how hard identity resolution is)
depends on these lists, and keeping them apart from the generation logic keeps both readable.
The lists are sized so that the ``large`` profile (100,000 customers) gets a distinct
name + descriptor pair for every customer (``len(company_cores()) * len(DESCRIPTORS)`` > 100,000),
while still producing the near-duplicates real CRMs are full of (same core name in two countries,
legal-suffix and punctuation variants, umlauts transliterated or not).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

#: First halves of compound company names ("Nord" + "wind" = "Nordwind").
COMPANY_PREFIXES: tuple[str, ...] = (
    "Nord", "Sud", "Blue", "Silver", "Green", "Red", "Iron", "Stone", "Bright", "Clear",
    "Swift", "True", "Prime", "North", "East", "West", "Sun", "Star", "Oak", "Pine",
    "Maple", "River", "Lake", "Sea", "Sky", "Cloud", "Terra", "Aqua", "Vita", "Alpen",
    "Fjord", "Polar", "Arctic", "Hanse", "Elb", "Rhein", "Baltic", "Crystal", "Golden", "Falcon",
    "Eagle", "Wolf", "Bear", "Fox", "Lynx", "Orbit", "Vector", "Pixel", "Signal", "Harbor",
    "Summit", "Copper", "Amber", "Cedar", "Birch", "Frost", "Storm", "Light", "Deep", "High",
)  # fmt: skip

#: Second halves of compound company names.
COMPANY_SUFFIXES: tuple[str, ...] = (
    "wind", "stream", "field", "point", "line", "works", "gate", "way", "light", "path",
    "stone", "bridge", "wave", "port", "mark", "ford", "berg", "dal", "haven", "land",
    "core", "tech", "soft", "ware", "logic", "hub", "lab", "spark", "flow", "craft",
    "forge", "mill", "wood", "view", "crest", "tide", "bay", "ridge", "well", "vale",
)  # fmt: skip

#: Stand-alone company cores, some with umlauts/accents to provoke transliteration variants.
COMPANY_WORDS: tuple[str, ...] = (
    "Acme", "Nova", "Atlas", "Vertex", "Zenith", "Apex", "Helix", "Orion", "Aurora", "Nimbus",
    "Sakura", "Kiwi", "Koala", "Müller", "Schäfer", "Köhler", "Jäger", "Bäcker", "Förster", "Grün",
    "Lumière", "Étoile", "Sørensen", "Åkesson", "Nyström", "Van Dijk", "De Vries", "Hoffmann",
    "Becker", "Wagner", "Keller", "Brenner", "Lindqvist", "Halvorsen", "Virtanen", "Tanaka",
    "Kobayashi", "Yamato", "Fuji", "Kestrel", "Meridian", "Pinnacle", "Quantum", "Sirius", "Vega",
    "Polaris", "Titan", "Juniper", "Willow", "Magnolia", "Sequoia", "Cobalt", "Onyx", "Indigo",
    "Saffron", "Cypress", "Beacon", "Anchor", "Compass", "Lantern", "Keystone", "Cornerstone",
    "Bluebird", "Redwood", "Evergreen", "Sterling", "Granite", "Marble", "Obsidian", "Topaz",
    "Emerald", "Sapphire", "Ruby", "Jade", "Opal", "Pearl", "Coral", "Dune", "Mesa", "Canyon",
    "Glacier", "Tundra", "Savanna", "Sierra", "Andes", "Alta", "Brava", "Costa", "Delta", "Echo",
    "Fenix", "Gamma", "Ionic", "Kappa", "Lambda", "Sigma", "Omega", "Tempo", "Rhythm", "Harmony",
    "Unity", "Fusion", "Catalyst", "Momentum", "Velocity", "Horizon", "Frontier", "Pioneer",
    "Voyager", "Navigator", "Ranger", "Sentinel", "Guardian", "Paragon", "Vanguard", "Optima",
    "Maxima", "Ultima", "Prisma", "Spectra", "Lumen", "Radiant", "Solaris", "Lunaris", "Stellar",
    "Cosmo", "Galaxy", "Nebula", "Comet", "Meteor", "Pulsar", "Quasar", "Photon", "Proton",
    "Neutron", "Ion", "Atom", "Molecule", "Element", "Carbon", "Nitro", "Oxygen", "Helium",
)  # fmt: skip

#: What the company does, appended to the core. ``""`` gives a bare core ("Acme GmbH").
DESCRIPTORS: tuple[str, ...] = (
    "", "Systems", "Logistics", "Analytics", "Software", "Solutions", "Consulting",
    "Technologies", "Industries", "Manufacturing", "Foods", "Energy", "Health", "Media",
    "Retail", "Capital", "Partners", "Group", "Labs", "Networks", "Robotics", "Engineering",
    "Pharma", "Textiles", "Motors", "Finance", "Insurance", "Digital", "Data", "Cloud",
    "Services", "Trading", "Design", "Studios", "Education", "Learning", "Security", "Medical",
    "Biotech", "Farms", "Construction", "Properties", "Transport", "Shipping", "Aviation",
    "& Partner", "& Sons", "& Co.", "Holding", "Ventures",
)  # fmt: skip

#: Descriptor -> Salesforce Account.Industry picklist value (catalog values only).
DESCRIPTOR_INDUSTRY: dict[str, str] = {
    "Systems": "Technology", "Analytics": "Technology", "Software": "Technology",
    "Technologies": "Technology", "Labs": "Technology", "Networks": "Technology",
    "Digital": "Technology", "Data": "Technology", "Cloud": "Technology", "Security": "Technology",
    "Robotics": "Manufacturing", "Engineering": "Manufacturing", "Manufacturing": "Manufacturing",
    "Industries": "Manufacturing", "Textiles": "Manufacturing", "Motors": "Manufacturing",
    "Construction": "Manufacturing", "Logistics": "Logistics", "Transport": "Logistics",
    "Shipping": "Logistics", "Aviation": "Logistics", "Trading": "Retail", "Retail": "Retail",
    "Foods": "Retail", "Farms": "Retail", "Capital": "Finance", "Finance": "Finance",
    "Insurance": "Finance", "Holding": "Finance", "Ventures": "Finance", "Health": "Healthcare",
    "Pharma": "Healthcare", "Medical": "Healthcare", "Biotech": "Healthcare",
    "Education": "Education", "Learning": "Education", "Media": "Media", "Studios": "Media",
    "Design": "Media", "Energy": "Energy", "Consulting": "Services", "Solutions": "Services",
    "Partners": "Services", "Services": "Services", "Group": "Services", "Properties": "Services",
}  # fmt: skip

#: Salesforce industry -> the HubSpot industry enumeration value a portal would hold.
HS_INDUSTRY: dict[str, str] = {
    "Technology": "COMPUTER_SOFTWARE",
    "Manufacturing": "MACHINERY",
    "Retail": "RETAIL",
    "Finance": "FINANCIAL_SERVICES",
    "Healthcare": "HOSPITAL_HEALTH_CARE",
    "Education": "EDUCATION_MANAGEMENT",
    "Media": "MEDIA_PRODUCTION",
    "Logistics": "LOGISTICS_AND_SUPPLY_CHAIN",
    "Energy": "OIL_ENERGY",
    "Services": "MANAGEMENT_CONSULTING",
}


@cache
def company_cores() -> tuple[str, ...]:
    """Every company core: compounds of prefix + suffix, then the stand-alone words.

    Cores whose domain label would repeat an earlier one ("Red"+"wood" vs "Redwood") are dropped,
    so that distinct customers never share a domain by accident (only on purpose).
    """
    seen: set[str] = set()
    out: list[str] = []
    for core in (*(p + s for p in COMPANY_PREFIXES for s in COMPANY_SUFFIXES), *COMPANY_WORDS):
        label = slug(core)
        if label not in seen:
            seen.add(label)
            out.append(core)
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Countries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    """A city as the CRMs hold it; ``alt`` is another common spelling ("München"/"Munich")."""

    name: str
    state: str | None = None
    alt: str | None = None


@dataclass(frozen=True)
class Country:
    """A customer country: legal forms, web domain, phone/postcode formats, naming language."""

    name: str
    code: str
    tld: str
    legal: tuple[tuple[str, int], ...]  # (suffix, weight)
    cities: tuple[City, ...]
    phone: str  # calling code
    postcode: str  # '#' digit, '@' letter
    lang: str  # key into FIRST_NAMES / LAST_NAMES / STREETS
    weight: int
    alt_names: tuple[str, ...] = ()  # how else people type the country into a CRM


COUNTRIES: tuple[Country, ...] = (
    Country(
        "Germany", "DE", "de", (("GmbH", 12), ("AG", 3), ("GmbH & Co. KG", 2), ("SE", 1)),
        (City("Berlin"), City("München", alt="Munich"), City("Hamburg"), City("Köln", alt="Cologne"),
         City("Frankfurt am Main", alt="Frankfurt"), City("Stuttgart"), City("Düsseldorf", alt="Duesseldorf"),
         City("Leipzig"), City("Dresden"), City("Hannover", alt="Hanover"), City("Nürnberg", alt="Nuremberg")),
        "+49", "#####", "de", 20, ("Deutschland", "DE"),
    ),
    Country(
        "Austria", "AT", "at", (("GmbH", 5), ("AG", 1)),
        (City("Wien", alt="Vienna"), City("Graz"), City("Linz"), City("Salzburg"), City("Innsbruck")),
        "+43", "####", "de", 4, ("Österreich", "AT"),
    ),
    Country(
        "Switzerland", "CH", "ch", (("AG", 4), ("GmbH", 2), ("SA", 1)),
        (City("Zürich", alt="Zurich"), City("Genève", alt="Geneva"), City("Basel"), City("Bern"),
         City("Lausanne")),
        "+41", "####", "de", 5, ("Schweiz", "CH"),
    ),
    Country(
        "United Kingdom", "GB", "co.uk", (("Ltd", 8), ("Limited", 3), ("PLC", 1), ("LLP", 1)),
        (City("London"), City("Manchester"), City("Birmingham"), City("Leeds"), City("Edinburgh"),
         City("Bristol"), City("Glasgow")),
        "+44", "@@# #@@", "en", 14, ("UK", "Great Britain", "England"),
    ),
    Country(
        "United States", "US", "com", (("Inc.", 8), ("LLC", 4), ("Corp.", 2), ("Corporation", 1)),
        (City("New York", "NY"), City("San Francisco", "CA"), City("Austin", "TX"),
         City("Chicago", "IL"), City("Boston", "MA"), City("Seattle", "WA"), City("Denver", "CO"),
         City("Atlanta", "GA")),
        "+1", "#####", "en", 18, ("USA", "US", "United States of America"),
    ),
    Country(
        "Sweden", "SE", "se", (("AB", 1),),
        (City("Stockholm"), City("Göteborg", alt="Gothenburg"), City("Malmö", alt="Malmo"),
         City("Uppsala")),
        "+46", "### ##", "nordic", 5, ("Sverige", "SE"),
    ),
    Country(
        "Netherlands", "NL", "nl", (("B.V.", 6), ("N.V.", 1)),
        (City("Amsterdam"), City("Rotterdam"), City("Utrecht"), City("Eindhoven"),
         City("Den Haag", alt="The Hague")),
        "+31", "#### @@", "nl", 6, ("The Netherlands", "Holland", "NL"),
    ),
    Country(
        "France", "FR", "fr", (("SAS", 5), ("SA", 2), ("SARL", 2)),
        (City("Paris"), City("Lyon"), City("Marseille"), City("Toulouse"), City("Bordeaux"),
         City("Lille")),
        "+33", "#####", "fr", 6, ("FR",),
    ),
    Country(
        "Australia", "AU", "com.au", (("Pty Ltd", 6), ("Pty. Limited", 1)),
        (City("Sydney", "NSW"), City("Melbourne", "VIC"), City("Brisbane", "QLD"),
         City("Perth", "WA"), City("Adelaide", "SA")),
        "+61", "####", "en", 6, ("AU",),
    ),
    Country(
        "Japan", "JP", "co.jp", (("K.K.", 2), ("Co., Ltd.", 3)),
        (City("Tokyo"), City("Osaka"), City("Yokohama"), City("Nagoya"), City("Fukuoka")),
        "+81", "###-####", "jp", 3, ("JP",),
    ),
    Country(
        "Denmark", "DK", "dk", (("ApS", 2), ("A/S", 2)),
        (City("København", alt="Copenhagen"), City("Aarhus"), City("Odense")),
        "+45", "####", "nordic", 3, ("Danmark", "DK"),
    ),
    Country(
        "Norway", "NO", "no", (("AS", 3), ("ASA", 1)),
        (City("Oslo"), City("Bergen"), City("Trondheim")),
        "+47", "####", "nordic", 3, ("Norge", "NO"),
    ),
    Country(
        "Finland", "FI", "fi", (("Oy", 3), ("Oyj", 1)),
        (City("Helsinki"), City("Espoo"), City("Tampere")),
        "+358", "#####", "nordic", 2, ("Suomi", "FI"),
    ),
    Country(
        "Spain", "ES", "es", (("S.L.", 3), ("S.A.", 2)),
        (City("Madrid"), City("Barcelona"), City("Valencia"), City("Sevilla", alt="Seville")),
        "+34", "#####", "es", 3, ("España", "ES"),
    ),
    Country(
        "Canada", "CA", "ca", (("Inc.", 3), ("Ltd.", 2)),
        (City("Toronto", "ON"), City("Vancouver", "BC"), City("Montréal", "QC", alt="Montreal"),
         City("Calgary", "AB")),
        "+1", "@#@ #@#", "en", 4, ("CA",),
    ),
)  # fmt: skip

#: Words a subsidiary puts after the group's core name ("Acme Nordic AB").
SUBSIDIARY_WORDS: dict[str, str] = {
    "DE": "Deutschland",
    "AT": "Austria",
    "CH": "Schweiz",
    "GB": "UK",
    "US": "America",
    "SE": "Nordic",
    "NL": "Benelux",
    "FR": "France",
    "AU": "Australia",
    "JP": "Japan",
    "DK": "Danmark",
    "NO": "Norge",
    "FI": "Finland",
    "ES": "Iberia",
    "CA": "Canada",
}

# --------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------

FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "de": ("Anna", "Lena", "Julia", "Sophie", "Katharina", "Laura", "Sarah", "Miriam", "Jana",
           "Petra", "Sabine", "Claudia", "Jörg", "Lukas", "Jonas", "Felix", "Maximilian", "Tobias",
           "Stefan", "Andreas", "Michael", "Thomas", "Florian", "Sebastian", "Matthias", "Jürgen",
           "Uwe", "Björn", "Ömer", "Leonie"),
    "en": ("Emma", "Olivia", "Charlotte", "Amelia", "Grace", "Emily", "Hannah", "Jessica",
           "Sarah", "Rachel", "Megan", "Lauren", "James", "Oliver", "Jack", "Harry", "George",
           "William", "Thomas", "Daniel", "Matthew", "Andrew", "Ryan", "Michael", "David", "Chris",
           "Kevin", "Brian", "Mark", "Paul"),
    "nordic": ("Astrid", "Ingrid", "Freja", "Sofia", "Maja", "Elin", "Karin", "Sigrid", "Linnea",
               "Ida", "Erik", "Lars", "Anders", "Nils", "Björn", "Johan", "Magnus", "Henrik",
               "Mikael", "Oskar", "Sven", "Mats", "Jukka", "Mikko", "Pekka", "Søren", "Rasmus",
               "Kasper", "Ola", "Tuva"),
    "nl": ("Sanne", "Anouk", "Lotte", "Fleur", "Eva", "Femke", "Iris", "Noor", "Daan", "Bram",
           "Sem", "Thijs", "Jeroen", "Pieter", "Joost", "Ruben", "Bas", "Niels", "Wouter", "Sander"),
    "fr": ("Camille", "Chloé", "Léa", "Manon", "Inès", "Élodie", "Claire", "Julie", "Amélie",
           "Océane", "Louis", "Hugo", "Lucas", "Théo", "Antoine", "Julien", "Nicolas", "François",
           "Mathieu", "Étienne"),
    "jp": ("Yuki", "Haruka", "Aoi", "Sakura", "Yui", "Mei", "Hina", "Rin", "Hiroshi", "Takeshi",
           "Kenji", "Daiki", "Haruto", "Ren", "Sota", "Yuto", "Kaito", "Riku", "Akira", "Shun"),
    "es": ("Lucía", "María", "Carmen", "Paula", "Sofía", "Elena", "Marta", "Laura", "Alejandro",
           "Javier", "Carlos", "Pablo", "Sergio", "Diego", "Álvaro", "Jorge", "Raúl", "Adrián"),
}  # fmt: skip

LAST_NAMES: dict[str, tuple[str, ...]] = {
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
           "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf",
           "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann",
           "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler", "Maier"),
    "en": ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
           "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green",
           "Hall", "Wood", "Jackson", "Clarke", "Miller", "Davis", "Garcia", "Anderson", "Martin",
           "Lee", "Harris", "Clark", "Lewis", "O'Brien"),
    "nordic": ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
               "Persson", "Svensson", "Gustafsson", "Hansen", "Johansen", "Olsen", "Nielsen",
               "Jensen", "Pedersen", "Sørensen", "Korhonen", "Virtanen", "Mäkinen", "Nieminen",
               "Lindqvist", "Berg", "Holm", "Dahl", "Lund", "Strand", "Åberg", "Ekström", "Nyberg"),
    "nl": ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen",
           "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters",
           "Hendriks", "van Leeuwen", "Dekker", "Brouwer"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
           "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David",
           "Bertrand", "Roux", "Vincent", "Fournier"),
    "jp": ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura",
           "Kobayashi", "Kato", "Yoshida", "Yamada", "Sasaki", "Yamaguchi", "Matsumoto", "Inoue",
           "Kimura", "Hayashi", "Shimizu", "Mori"),
    "es": ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
           "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno",
           "Muñoz", "Álvarez", "Romero"),
}  # fmt: skip

#: Street names per naming language; the generator adds a house number in the local order.
STREETS: dict[str, tuple[str, ...]] = {
    "de": ("Hauptstraße", "Bahnhofstraße", "Industriestraße", "Gartenweg", "Schillerstraße",
           "Goethestraße", "Am Markt", "Lindenallee", "Hafenstraße", "Kaiserstraße"),
    "en": ("High Street", "Station Road", "Main Street", "Park Avenue", "Church Lane",
           "Market Street", "King Street", "Harbour Road", "Mill Lane", "Victoria Road"),
    "nordic": ("Storgatan", "Drottninggatan", "Kungsgatan", "Strandvägen", "Havnegade",
               "Karl Johans gate", "Aleksanterinkatu", "Vestergade", "Sveavägen", "Nørregade"),
    "nl": ("Dorpsstraat", "Kerkstraat", "Stationsweg", "Herengracht", "Keizersgracht",
           "Marktplein", "Havenstraat", "Molenweg"),
    "fr": ("Rue de la Paix", "Avenue des Champs", "Rue Victor Hugo", "Boulevard Haussmann",
           "Rue du Port", "Place de la Gare", "Rue Pasteur", "Avenue Jean Jaurès"),
    "jp": ("Chiyoda", "Minato", "Shibuya", "Shinjuku", "Chuo", "Naka", "Kita", "Nishi"),
    "es": ("Calle Mayor", "Gran Vía", "Paseo de Gracia", "Calle del Puerto", "Avenida de la Paz",
           "Calle Real", "Plaza Mayor", "Calle Nueva"),
}  # fmt: skip

#: Job titles of customer contacts.
TITLES: tuple[str, ...] = (
    "CEO", "CFO", "CTO", "COO", "Head of Finance", "IT Director", "Operations Manager",
    "Procurement Manager", "Payroll Specialist", "Controller", "HR Manager", "Project Manager",
    "Office Manager", "VP Sales", "Data Analyst", "Head of IT", "Accountant", "Team Lead Payroll",
    "Business Analyst", "Managing Director",
)  # fmt: skip

#: Free-mail providers; a contact with such an address gives no hint of their company.
FREE_MAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "gmx.de", "web.de", "t-online.de",
    "icloud.com", "yahoo.co.uk", "orange.fr", "gmx.at", "bluewin.ch", "live.se", "hotmail.co.uk",
)  # fmt: skip

#: The vendor running both CRMs (its sellers and account managers are the CRM users).
VENDOR_DOMAIN = "lumora.io"

#: Names for marketing emails (HubSpot ``hs_email_last_email_name``).
MARKETING_EMAILS: tuple[str, ...] = (
    "Newsletter", "Webinar invite: Analytics for Finance teams", "Product update",
    "Customer story: payroll automation", "Event: Lumora Summit", "Whitepaper: Integrations 101",
    "Trial nurture #2", "Release notes", "Survey: how are we doing?", "Spring offer",
)  # fmt: skip

_TRANSLIT = str.maketrans(
    {
        "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss",
        "å": "a", "Å": "A", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae",
        "é": "e", "è": "e", "ê": "e", "É": "E", "È": "E", "à": "a", "á": "a", "â": "a",
        "í": "i", "ó": "o", "ô": "o", "ú": "u", "ñ": "n", "ç": "c", "Á": "A", "Ó": "O",
    }
)  # fmt: skip


def transliterate(text: str) -> str:
    """ASCII spelling people type when they have no umlaut key ("Müller" -> "Mueller")."""
    return text.translate(_TRANSLIT)


@lru_cache(maxsize=65536)
def slug(text: str, sep: str = "") -> str:
    """A domain / mailbox label: transliterated, lower case, letters and digits only."""
    out: list[str] = []
    for word in transliterate(text).lower().replace("&", " ").split():
        cleaned = "".join(ch for ch in word if ch.isalnum())
        if cleaned:
            out.append(cleaned)
    return sep.join(out)
