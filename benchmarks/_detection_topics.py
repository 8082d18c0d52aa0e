"""Topics of the labelled detection set: prompts, several wordings of the same answer, and the
facts in them as typed slots, so that regressions (one fact changed) and acceptable changes
(the same facts worded, ordered or formatted differently) can be rendered from each.

Wording markers: `{slot}` a fact; `{NEG:a|b}` a statement and its negation; `{MOD:a|b}` a
statement with strong and weak modality; a sentence starting with `!` is a warning or limit.
Sentences are the items of a wording; a wording whose items start with `- ` is a list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

SlotType = Literal["quantity", "money", "percent", "count", "date", "time", "entity"]


@dataclass(frozen=True)
class Slot:
    type: SlotType
    choices: tuple[object, ...]
    """quantity: (value, unit); money: (amount, currency); count: (n, noun); date: date;
    time: (hour, minute); entity: name; percent: value."""


@dataclass(frozen=True)
class Topic:
    id: str
    prompt: str
    slots: dict[str, Slot]
    wordings: tuple[tuple[str, ...], ...]
    route: str = "/v1/chat/completions"
    system: str | None = None
    creative: bool = False
    """Production's own re-runs change the facts (an example, a suggestion)."""
    tags: tuple[str, ...] = field(default_factory=tuple)


def q(*pairs: tuple[float, str]) -> Slot:
    return Slot("quantity", pairs)


def money(*pairs: tuple[float, str]) -> Slot:
    return Slot("money", pairs)


def count(*pairs: tuple[int, str]) -> Slot:
    return Slot("count", pairs)


def ent(*names: str) -> Slot:
    return Slot("entity", names)


def when(*days: date) -> Slot:
    return Slot("date", days)


def at(*times: tuple[int, int]) -> Slot:
    return Slot("time", times)


def pct(*values: float) -> Slot:
    return Slot("percent", values)


DRUGS = ("paracetamol", "ibuprofen", "naproxen", "aspirin", "cetirizine", "loratadine")
CITIES = ("Paris", "Lyon", "Madrid", "Lisbon", "Berlin", "Vienna", "Prague", "Rome", "Milan")
PEOPLE = ("Dr. Patel", "Maria Lopez", "James Okafor", "Anna Schmidt", "Kenji Watanabe")
CARRIERS = ("DHL", "UPS", "FedEx", "Royal Mail", "La Poste")
STATIONS = ("Gare de Lyon", "Paddington", "Hauptbahnhof", "Atocha", "Termini")
ROOMS = ("Orion", "Vega", "Sirius", "Lyra", "Atlas")
PRODUCTS = ("Pixel 8", "iPhone 15", "Galaxy S24", "ThinkPad X1", "MacBook Air")
DATABASES = ("PostgreSQL", "MySQL", "SQLite", "MariaDB")
DOCTORS = ("Dr. Nguyen", "Dr. Rossi", "Dr. Adebayo", "Prof. Keller", "Dr. O'Brien")
CLINICS = ("Riverside", "St. Mary's", "Northgate", "Elm Street")

TOPICS: tuple[Topic, ...] = (
    Topic(
        id="paracetamol",
        prompt="How much paracetamol can an adult take for a headache?",
        slots={
            "dose": q((500, "mg"), (650, "mg")),
            "high": q(
                (1, "g"),
            ),
            "hours": count((4, "hours"), (6, "hours")),
            "max": q((4, "g"), (3, "g")),
            "drug": ent("paracetamol"),
        },
        wordings=(
            (
                "Adults can take {dose} to {high} of {drug} every {hours}.",
                "{NEG:Take it with a glass of water|Do not take it with water}.",
                "!Do not take more than {max} in 24 hours.",
                "{MOD:You must see a doctor if the headache lasts more than three days|You may "
                "see a doctor if the headache lasts more than three days}.",
            ),
            (
                "For an adult, the usual dose of {drug} is {dose} to {high}, repeated every "
                "{hours} if needed.",
                "!The limit is {max} a day, so never exceed it.",
                "{NEG:Swallow the tablets with water|Do not swallow the tablets with water}.",
                "{MOD:A headache that lasts longer than three days must be checked by a doctor"
                "|A headache that lasts longer than three days may be checked by a doctor}.",
            ),
            (
                "Take {dose} to {high} of {drug} at a time, with at least {hours} between doses.",
                "!Stay at or below {max} per day to protect your liver.",
                "{NEG:Have it with some water|Have it without water}.",
                "{MOD:If the pain continues beyond three days you must talk to a doctor|If the "
                "pain continues beyond three days you might talk to a doctor}.",
            ),
        ),
        tags=("medical",),
    ),
    Topic(
        id="ibuprofen_child",
        prompt="What dose of ibuprofen is safe for my 8 year old?",
        slots={
            "dose": q((200, "mg"), (150, "mg")),
            "hours": count((6, "hours"), (8, "hours")),
            "times": count((3, "doses"), (4, "doses")),
            "drug": ent("ibuprofen"),
        },
        wordings=(
            (
                "For a child of that age the usual dose of {drug} is {dose} every {hours}.",
                "!Give no more than {times} in 24 hours.",
                "{NEG:Give it with food or milk|Do not give it with food or milk}.",
                "{MOD:You must check the leaflet for your child's weight|You can check the "
                "leaflet for your child's weight}.",
            ),
            (
                "Most 8 year olds can have {dose} of {drug}, repeated every {hours} if needed.",
                "{NEG:It is best given after a meal|It is best not given after a meal}.",
                "!The maximum is {times} in a day.",
                "{MOD:Always check the dose on the leaflet against your child's weight|"
                "Optionally check the dose on the leaflet against your child's weight}.",
            ),
            (
                "At 8, a typical {drug} dose is {dose}, which you can repeat after {hours}.",
                "!Don't go beyond {times} in any 24-hour period.",
                "{NEG:It's kinder to the stomach to give it with a snack|There's no need to give "
                "it with a snack}.",
                "{MOD:Check the leaflet, because the dose has to match your child's weight|Check "
                "the leaflet if you like, in case the dose should match your child's weight}.",
            ),
        ),
        tags=("medical",),
    ),
    Topic(
        id="fever",
        prompt="When does a temperature count as a fever in adults?",
        slots={
            "temp": q((38, "°C"), (37.8, "°C")),
            "high": q((39.4, "°C"), (40, "°C")),
            "days": count((3, "days"), (2, "days")),
        },
        wordings=(
            (
                "In adults a temperature of {temp} or higher is usually considered a fever.",
                "!If it goes above {high}, call a doctor the same day.",
                "{MOD:You must seek care if the fever lasts more than {days}|You may seek care "
                "if the fever lasts more than {days}}.",
                "{NEG:Drink plenty of fluids|Do not drink plenty of fluids}.",
            ),
            (
                "A fever in adults starts at about {temp}.",
                "{NEG:Keep drinking fluids while it lasts|Avoid drinking fluids while it lasts}.",
                "!A reading above {high} needs a doctor the same day.",
                "{MOD:A fever that lasts longer than {days} must be checked|A fever that lasts "
                "longer than {days} could be checked}.",
            ),
        ),
        tags=("medical",),
    ),
    Topic(
        id="flight",
        prompt="What are the details of my flight booking?",
        slots={
            "city": ent(*CITIES),
            "day": when(date(2025, 3, 14), date(2025, 6, 2), date(2025, 9, 21)),
            "time": at((9, 45), (14, 30), (18, 5)),
            "bag": q((23, "kg"), (20, "kg")),
            "gate": count((2, "hours"), (3, "hours")),
        },
        wordings=(
            (
                "Your flight to {city} leaves on {day} at {time}.",
                "Checked baggage is limited to {bag} per bag.",
                "{MOD:You must be at the airport {gate} before departure|You may be at the "
                "airport {gate} before departure}.",
                "{NEG:Liquids over 100 ml are allowed in hand luggage|Liquids over 100 ml are "
                "not allowed in hand luggage}.",
            ),
            (
                "You are booked on the {time} flight to {city} on {day}.",
                "{MOD:Arrive at the airport at least {gate} early; this is required|Arrive at "
                "the airport at least {gate} early if you like}.",
                "Each checked bag may weigh up to {bag}.",
                "{NEG:Liquids above 100 ml are fine in your cabin bag|Liquids above 100 ml are "
                "not permitted in your cabin bag}.",
            ),
            (
                "The booking shows a departure to {city} at {time} on {day}.",
                "The allowance for checked luggage is {bag} a bag.",
                "{NEG:Hand luggage can contain liquids over 100 ml|Hand luggage cannot contain "
                "liquids over 100 ml}.",
                "{MOD:Check-in closes {gate} before departure, so you have to arrive by then|"
                "Check-in closes {gate} before departure, so you could arrive by then}.",
            ),
        ),
        tags=("travel",),
    ),
    Topic(
        id="meeting",
        prompt="When is the project review meeting?",
        slots={
            "day": when(date(2025, 4, 8), date(2025, 5, 20), date(2025, 11, 4)),
            "time": at((15, 0), (10, 30), (9, 0)),
            "room": ent(*ROOMS),
            "person": ent(*PEOPLE),
            "length": count((45, "minutes"), (60, "minutes")),
        },
        wordings=(
            (
                "The project review is on {day} at {time} in the {room} room.",
                "{person} will lead it and it should take about {length}.",
                "{MOD:Everyone must bring their status report|Everyone may bring their status "
                "report}.",
            ),
            (
                "It is scheduled for {time} on {day}, in room {room}.",
                "Plan for roughly {length}; {person} is chairing.",
                "{MOD:Status reports are required|Status reports are optional}.",
            ),
        ),
        tags=("work",),
    ),
    Topic(
        id="refund",
        prompt="Can I get a refund for a damaged item?",
        slots={
            "days": count((30, "days"), (14, "days")),
            "share": pct(100, 50),
            "process": count((5, "business days"), (10, "business days")),
        },
        wordings=(
            (
                "Yes, you can return a damaged item within {days} of delivery.",
                "You will get {share} of the price back.",
                "{NEG:Damaged items are covered by the policy|Damaged items are not covered by "
                "the policy}.",
                "{MOD:You must keep the receipt|You may keep the receipt}.",
                "The refund reaches your card within {process}.",
            ),
            (
                "Damaged items can be returned for {days} after they arrive.",
                "{NEG:They are covered by our returns policy|They are not covered by our "
                "returns policy}, and the refund is {share} of what you paid.",
                "{MOD:Keeping the receipt is required|Keeping the receipt is optional}.",
                "Expect the money back within {process}.",
            ),
            (
                "Sorry to hear it arrived damaged. You have {days} from delivery to send it back.",
                "{NEG:Our policy includes damaged goods|Our policy doesn't include damaged "
                "goods}, and you'll be refunded {share} of the price within {process}.",
                "{MOD:Hold on to your receipt, as we need it for the return|Hold on to your "
                "receipt if you want, though we might not need it for the return}.",
            ),
        ),
        tags=("support",),
    ),
    Topic(
        id="transfer",
        prompt="How much does an international transfer cost?",
        slots={
            "fee": money((15, "USD"), (25, "USD")),
            "limit": money((10000, "USD"), (5000, "USD")),
            "rate": pct(0.5, 1.5),
            "days": count((2, "business days"), (3, "business days")),
        },
        wordings=(
            (
                "An international transfer costs a flat fee of {fee} plus {rate} of the amount.",
                "!You can send at most {limit} per day.",
                "The money usually arrives within {days}.",
                "{NEG:Transfers are processed on weekends|Transfers are not processed on "
                "weekends}.",
            ),
            (
                "The fee is {fee} per transfer, with a currency margin of {rate}.",
                "!The daily limit is {limit}.",
                "{NEG:Weekend transfers go out the same day|Weekend transfers do not go out the "
                "same day}.",
                "Most payments land in {days}.",
            ),
            (
                "Sending money abroad costs {fee} per transfer and a {rate} exchange margin.",
                "!There's a cap of {limit} a day.",
                "{NEG:Transfers you make at the weekend are still sent|Transfers you make at the "
                "weekend aren't sent until Monday}.",
                "Expect the money within {days}.",
            ),
        ),
        tags=("finance",),
    ),
    Topic(
        id="bread",
        prompt="How do I bake a simple loaf of bread?",
        slots={
            "flour": q((500, "g"), (450, "g")),
            "water": q((350, "ml"), (300, "ml")),
            "oven": q((220, "°C"), (200, "°C")),
            "minutes": count((35, "minutes"), (40, "minutes")),
            "rise": count((1, "hour"), (2, "hours")),
        },
        wordings=(
            (
                "Mix {flour} of flour with {water} of warm water, yeast and salt.",
                "Let the dough rise for {rise}.",
                "Bake at {oven} for {minutes}.",
                "{NEG:Open the oven to check on it|Do not open the oven during the first "
                "twenty minutes}.",
            ),
            (
                "Combine {flour} flour, {water} water, a sachet of yeast and a pinch of salt.",
                "Leave it to rise for {rise}, then shape it.",
                "It needs {minutes} in an oven at {oven}.",
                "{NEG:Check on it by opening the oven|Keep the oven door closed for the first "
                "twenty minutes}.",
            ),
        ),
        tags=("food",),
    ),
    Topic(
        id="car_rental",
        prompt="What do I need to rent a car?",
        slots={
            "age": count((21, "years old"), (25, "years old")),
            "deposit": money((300, "EUR"), (500, "EUR")),
            "km": q((200, "km"), (300, "km")),
        },
        wordings=(
            (
                "You need to be at least {age} to rent a car.",
                "{MOD:You must hold a full driving licence|You may hold a full driving licence}.",
                "A deposit of {deposit} is held on your credit card.",
                "!The daily mileage is capped at {km}.",
            ),
            (
                "The minimum age is {age}.",
                "A {deposit} deposit is blocked on a credit card when you collect the car.",
                "!Each day includes up to {km}.",
                "{MOD:A full driving licence is required|A full driving licence is recommended}.",
            ),
        ),
        tags=("travel",),
    ),
    Topic(
        id="server_timeout",
        prompt="How should I configure the upstream timeouts?",
        slots={
            "connect": count((5, "seconds"), (3, "seconds")),
            "read": count((60, "seconds"), (30, "seconds")),
            "conns": count((100, "connections"), (256, "connections")),
            "db": ent(*DATABASES),
        },
        wordings=(
            (
                "Set the connect timeout to {connect} and the read timeout to {read}.",
                "Keep the pool at {conns} per upstream.",
                "{NEG:Expose the admin port to the internet|Never expose the admin port to the "
                "internet}.",
                "{MOD:You must restart the service after changing these values|You may restart "
                "the service after changing these values}.",
                "The same settings work for the {db} proxy.",
            ),
            (
                "Use {connect} for connecting and {read} for reading.",
                "{MOD:A restart is required for the change to apply|A restart is optional for "
                "the change to apply}.",
                "A pool of {conns} per upstream is a good default, also in front of {db}.",
                "{NEG:The admin port can face the public internet|The admin port must never "
                "face the public internet}.",
            ),
        ),
        tags=("tech",),
    ),
    Topic(
        id="password",
        prompt="What is our password policy?",
        slots={
            "length": count((12, "characters"), (14, "characters")),
            "expiry": count((90, "days"), (180, "days")),
            "history": count((5, "passwords"), (10, "passwords")),
        },
        wordings=(
            (
                "Passwords need at least {length}.",
                "They expire every {expiry}.",
                "{NEG:You can reuse an old password|You cannot reuse any of your last {history}}.",
                "{MOD:Multi-factor authentication is mandatory|Multi-factor authentication is "
                "optional}.",
            ),
            (
                "A password must be {length} or longer and is changed every {expiry}.",
                "{NEG:Old passwords may be used again|None of your last {history} may be used "
                "again}.",
                "{MOD:Everyone must turn on multi-factor authentication|Everyone may turn on "
                "multi-factor authentication}.",
            ),
        ),
        tags=("policy",),
    ),
    Topic(
        id="shipping",
        prompt="How long does shipping take?",
        slots={
            "days": count((3, "business days"), (5, "business days")),
            "free": money((50, "USD"), (75, "USD")),
            "carrier": ent(*CARRIERS),
            "cost": money((4.99, "USD"), (6.5, "USD")),
        },
        wordings=(
            (
                "Standard orders arrive within {days} and ship with {carrier}.",
                "Shipping is free on orders over {free}; below that it costs {cost}.",
                "{NEG:We deliver on weekends|We do not deliver on weekends}.",
            ),
            (
                "We send standard orders with {carrier}, and they take {days}.",
                "{NEG:Saturday delivery is available|Saturday delivery is not available}.",
                "Orders above {free} ship free, otherwise the fee is {cost}.",
            ),
        ),
        tags=("support",),
    ),
    Topic(
        id="exercise",
        prompt="How much exercise should an adult get?",
        slots={
            "minutes": count((150, "minutes"), (300, "minutes")),
            "strength": count((2, "days"), (3, "days")),
            "hr": pct(70, 60),
        },
        wordings=(
            (
                "Adults should aim for at least {minutes} of moderate activity a week.",
                "Add muscle strengthening on {strength} a week.",
                "Moderate means about {hr} of your maximum heart rate.",
                "{NEG:Warm up before you start|Do not warm up before you start}.",
            ),
            (
                "The guideline is {minutes} of moderate exercise per week, plus strength work "
                "on {strength}.",
                "{NEG:A short warm-up helps prevent injury|A short warm-up does not help prevent"
                " injury}.",
                "Moderate effort is around {hr} of maximum heart rate.",
            ),
            (
                "Try to get {minutes} a week of moderate exercise, at about {hr} of your maximum "
                "heart rate.",
                "Strength training on {strength} each week matters too.",
                "{NEG:Always spend a few minutes warming up first|Don't bother warming up first}.",
            ),
        ),
        tags=("health",),
    ),
    Topic(
        id="tax",
        prompt="When is the tax return due?",
        slots={
            "due": when(date(2025, 4, 15), date(2025, 10, 31), date(2025, 1, 31)),
            "penalty": pct(5, 10),
            "extension": count((6, "months"), (3, "months")),
        },
        wordings=(
            (
                "The return is due on {due}.",
                "Late returns pay a penalty of {penalty} of the unpaid tax per month.",
                "{MOD:You must file even if you cannot pay|You may file even if you cannot pay}.",
                "An extension gives you {extension} more to file.",
            ),
            (
                "File by {due}.",
                "An extension adds {extension} for filing, not for paying.",
                "The late penalty is {penalty} of the tax owed for each month.",
                "{MOD:Filing is required even when you cannot pay|Filing is optional when you "
                "cannot pay}.",
            ),
            (
                "Your deadline is {due}.",
                "{MOD:Even if you can't pay yet, you have to send the return|If you can't pay "
                "yet, you could send the return later}.",
                "Each month late adds {penalty} of the unpaid tax, and an extension gives you "
                "{extension} extra to file.",
            ),
        ),
        tags=("finance",),
    ),
    Topic(
        id="plant",
        prompt="How do I care for a fiddle leaf fig?",
        slots={
            "water": count((7, "days"), (10, "days")),
            "temp": q((18, "°C"), (16, "°C")),
            "light": count((6, "hours"), (4, "hours")),
        },
        wordings=(
            (
                "Water it about every {water}, when the top of the soil is dry.",
                "Keep it above {temp}.",
                "It likes {light} of bright light a day.",
                "{NEG:Put it in direct afternoon sun|Keep it out of direct afternoon sun}.",
            ),
            (
                "A watering every {water} is usually enough.",
                "{NEG:Strong afternoon sun is fine for it|Strong afternoon sun scorches its "
                "leaves}.",
                "It needs {light} of bright, indirect light and temperatures over {temp}.",
            ),
        ),
        tags=("home",),
    ),
    Topic(
        id="train",
        prompt="When does the next train leave?",
        slots={
            "time": at((7, 15), (16, 40), (12, 5)),
            "station": ent(*STATIONS),
            "platform": count((4, "platform"), (9, "platform")),
            "price": money((39, "EUR"), (54.5, "EUR")),
        },
        wordings=(
            (
                "The next train leaves {station} at {time}.",
                "A standard ticket costs {price}.",
                "{MOD:You must reserve a seat on this service|You may reserve a seat on this "
                "service}.",
            ),
            (
                "There is a departure at {time} from {station}.",
                "{MOD:Seat reservations are compulsory|Seat reservations are optional}.",
                "Tickets are {price} in standard class.",
            ),
            (
                "Your next option is the {time} from {station}, and standard fares are {price}.",
                "{MOD:You'll need a seat reservation to board|A seat reservation is possible but "
                "not needed to board}.",
            ),
        ),
        tags=("travel",),
    ),
    Topic(
        id="rate_limit",
        prompt="What are the API rate limits?",
        slots={
            "rpm": count((600, "requests per minute"), (1000, "requests per minute")),
            "burst": count((50, "requests"), (100, "requests")),
            "retry": count((30, "seconds"), (60, "seconds")),
        },
        wordings=(
            (
                "Each key can send {rpm}, with bursts of up to {burst}.",
                "Above that the API answers 429 and you should retry after {retry}.",
                "{NEG:Limits are shared between keys|Limits are not shared between keys}.",
            ),
            (
                "The limit is {rpm} per key and a burst allowance of {burst}.",
                "{NEG:Each key shares its quota with the others|Each key has its own quota}.",
                "On a 429, wait {retry} before retrying.",
            ),
        ),
        tags=("tech",),
    ),
    Topic(
        id="leave",
        prompt="How much annual leave do employees get?",
        slots={
            "days": count((25, "days"), (28, "days")),
            "notice": count((2, "weeks"), (4, "weeks")),
            "carry": count((5, "days"), (10, "days")),
        },
        wordings=(
            (
                "Full-time employees get {days} of annual leave.",
                "{MOD:Leave must be requested {notice} in advance|Leave can be requested "
                "{notice} in advance}.",
                "!You can carry over at most {carry} into next year.",
            ),
            (
                "The entitlement is {days} a year for full-time staff.",
                "!Up to {carry} may be carried into the following year, no more.",
                "{MOD:Requests are required {notice} ahead|Requests are welcome {notice} ahead}.",
            ),
        ),
        tags=("policy",),
    ),
    Topic(
        id="insurance",
        prompt="How do I make a claim on my phone insurance?",
        slots={
            "days": count((30, "days"), (14, "days")),
            "excess": money((99, "GBP"), (150, "GBP")),
            "product": ent(*PRODUCTS),
        },
        wordings=(
            (
                "Claims for your {product} must be made within {days} of the damage.",
                "The excess is {excess} per claim.",
                "{NEG:Accidental damage is covered|Accidental damage is not covered}.",
                "{MOD:You must report a theft to the police first|You may report a theft to the"
                " police first}.",
            ),
            (
                "Report the damage to your {product} within {days}.",
                "{NEG:The policy covers accidental damage|The policy excludes accidental "
                "damage}, with an excess of {excess}.",
                "{MOD:A police report is required for theft|A police report is optional for "
                "theft}.",
            ),
            (
                "You have {days} after the damage to file a claim for your {product}.",
                "{NEG:Accidents such as a dropped phone are included|Accidents such as a dropped "
                "phone aren't included}; each claim has an excess of {excess}.",
                "{MOD:For a theft, you need to get a police report first|For a theft, getting a "
                "police report first is up to you}.",
            ),
        ),
        tags=("support",),
    ),
    Topic(
        id="vaccine_pet",
        prompt="When should my puppy get its vaccines?",
        slots={
            "first": count((8, "weeks"), (6, "weeks")),
            "second": count((12, "weeks"), (10, "weeks")),
            "walk": count((2, "weeks"), (1, "week")),
        },
        wordings=(
            (
                "Puppies get their first vaccine at {first} old and the second at {second}.",
                "!Wait {walk} after the second dose before walking in public places.",
                "{NEG:Let it meet unvaccinated dogs|Keep it away from unvaccinated dogs} until "
                "then.",
            ),
            (
                "The first jab is given at {first} and the booster at {second}.",
                "{NEG:Contact with unvaccinated dogs is fine|Avoid contact with unvaccinated "
                "dogs} before that.",
                "!Public walks should only start {walk} after the booster.",
            ),
        ),
        tags=("pets",),
    ),
    Topic(
        id="lists_onboarding",
        prompt="What should a new hire do in the first week?",
        slots={
            "laptop": ent("ThinkPad X1", "MacBook Air", "Dell XPS"),
            "days": count((3, "days"), (5, "days")),
            "training": count((2, "hours"), (4, "hours")),
        },
        wordings=(
            (
                "- Collect your {laptop} from IT on day one.",
                "- Finish the security training ({training}) within {days}.",
                "- {MOD:You must set up multi-factor authentication|You may set up multi-factor"
                " authentication} before accessing email.",
                "- Meet your buddy for lunch.",
            ),
            (
                "- Pick up the {laptop} from the IT desk on your first day.",
                "- Complete the {training} security course in your first {days}.",
                "- {MOD:Multi-factor authentication is required before email access|Multi-"
                "factor authentication is optional before email access}.",
                "- Have lunch with your buddy.",
            ),
        ),
        tags=("lists",),
    ),
    Topic(
        id="lists_backup",
        prompt="What is the backup procedure for the database?",
        slots={
            "hour": at((2, 0), (3, 30), (1, 15)),
            "keep": count((30, "days"), (14, "days")),
            "db": ent(*DATABASES),
        },
        wordings=(
            (
                "- The {db} backup runs nightly at {hour}.",
                "- Snapshots are kept for {keep}.",
                "- {NEG:Run a restore test every month|Do not run a restore test every month}.",
                "- {MOD:Encryption at rest is mandatory|Encryption at rest is optional}.",
            ),
            (
                "- Nightly {db} backups start at {hour}.",
                "- We retain them for {keep}.",
                "- {NEG:A monthly restore test is part of the procedure|A monthly restore test "
                "is not part of the procedure}.",
                "- {MOD:Backups must be encrypted at rest|Backups can be encrypted at rest}.",
            ),
        ),
        tags=("lists", "tech"),
    ),
    Topic(
        id="appointment",
        prompt="When is my appointment and what should I bring?",
        slots={
            "doctor": ent(*DOCTORS),
            "clinic": ent(*CLINICS),
            "day": when(date(2025, 2, 11), date(2025, 7, 3), date(2025, 12, 9)),
            "time": at((8, 30), (11, 15), (16, 0)),
            "early": count((15, "minutes"), (10, "minutes")),
        },
        wordings=(
            (
                "Your appointment with {doctor} is on {day} at {time}, at the {clinic} clinic.",
                "Please arrive {early} early to check in.",
                "{MOD:You must bring your insurance card|You may bring your insurance card}.",
                "{NEG:Eat normally beforehand|Do not eat anything beforehand}.",
            ),
            (
                "You are seeing {doctor} at {time} on {day} ({clinic} clinic).",
                "{NEG:There is no need to fast before the visit|Fast before the visit}.",
                "{MOD:Bringing your insurance card is required|Bringing your insurance card is "
                "optional}, and check-in opens {early} before your slot.",
            ),
            (
                "{doctor} will see you on {day} at {time} at {clinic}.",
                "{MOD:Have your insurance card with you; reception needs it|Have your insurance "
                "card with you if it's handy}.",
                "Check in {early} ahead.",
                "{NEG:You can have breakfast as usual|Skip breakfast and don't eat before you "
                "come}.",
            ),
        ),
        tags=("medical",),
    ),
    # Production itself varies these facts from run to run.
    Topic(
        id="creative_budget",
        prompt="Give me an example monthly budget for a student.",
        slots={
            "rent": money((600, "USD"), (550, "USD"), (700, "USD"), (650, "USD")),
            "food": money((250, "USD"), (300, "USD"), (200, "USD"), (220, "USD")),
            "fun": money((80, "USD"), (100, "USD"), (60, "USD"), (120, "USD")),
        },
        wordings=(
            (
                "Here is an example: rent {rent}, groceries {food} and leisure {fun}.",
                "Adjust the numbers to your own city and income.",
            ),
            (
                "A sample student budget might be {rent} for rent, {food} for food and {fun} "
                "for going out.",
                "Treat these as a starting point, not a rule.",
            ),
        ),
        creative=True,
        tags=("creative",),
    ),
    Topic(
        id="creative_run",
        prompt="Suggest a beginner running plan.",
        slots={
            "runs": count((3, "runs"), (4, "runs"), (2, "runs")),
            "minutes": count((20, "minutes"), (25, "minutes"), (30, "minutes"), (15, "minutes")),
            "weeks": count((8, "weeks"), (6, "weeks"), (10, "weeks")),
        },
        wordings=(
            (
                "Start with {runs} a week of about {minutes} each.",
                "Over {weeks}, build up slowly and take rest days between runs.",
            ),
            (
                "A gentle plan is {runs} per week, each lasting around {minutes}.",
                "Increase the time gradually over {weeks}.",
            ),
        ),
        creative=True,
        tags=("creative",),
    ),
    Topic(
        id="creative_party",
        prompt="Plan a small birthday party for me.",
        slots={
            "guests": count((12, "guests"), (10, "guests"), (15, "guests"), (8, "guests")),
            "time": at((19, 0), (18, 30), (20, 0), (17, 0)),
            "cake": money((40, "USD"), (35, "USD"), (50, "USD")),
        },
        wordings=(
            (
                "Invite about {guests} and start at {time}.",
                "Order a cake for around {cake} and keep the music low-key.",
            ),
            (
                "A cosy party for {guests} starting at {time} works well.",
                "Budget roughly {cake} for the cake.",
            ),
        ),
        creative=True,
        tags=("creative",),
    ),
)
