"""Structured scenarios of the labelled detection set: tool calls, JSON answers, code answers,
answers in another language and refusals, each with the request the worker sees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolScenario:
    id: str
    prompt: str
    tools: tuple[dict[str, Any], ...]
    calls: tuple[tuple[str, dict[str, Any]], ...]
    """Production's calls: (function name, arguments)."""
    wrong_name: str
    wrong_args: tuple[tuple[str, Any], ...]
    """(argument, wrong value) choices for the wrong-argument regression."""


def _tool(name: str, **props: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {
                "type": "object",
                "properties": {k: {"type": v} for k, v in props.items()},
                "required": list(props),
            },
        },
    }


WEATHER = _tool("get_weather", city="string", unit="string")
FORECAST = _tool("get_forecast", city="string", days="integer")
FLIGHTS = _tool("search_flights", origin="string", destination="string", date="string")
BOOK = _tool("book_flight", flight_id="string", passengers="integer")
EMAIL = _tool("send_email", to="string", subject="string", body="string")
DRAFT = _tool("draft_email", to="string", subject="string", body="string")
EVENT = _tool("create_event", title="string", date="string", time="string")
CONVERT = _tool("convert_currency", amount="number", source="string", target="string")
ORDER = _tool("lookup_order", order_id="string")
CANCEL = _tool("cancel_order", order_id="string", reason="string")
REFUND = _tool("refund_order", order_id="string", amount="number")
SEARCH = _tool("search_products", query="string", max_price="number", in_stock="boolean")
THERMO = _tool("set_thermostat", room="string", temperature="number")
TRANSFER = _tool("transfer_money", account="string", amount="number", currency="string")
LIGHTS = _tool("set_lights", room="string", on="boolean")

TOOL_SCENARIOS: tuple[ToolScenario, ...] = (
    ToolScenario("weather", "What's the weather in Lyon right now, in celsius?",
                 (WEATHER, FORECAST), (("get_weather", {"city": "Lyon", "unit": "celsius"}),),
                 "get_forecast", (("city", "Lille"), ("unit", "fahrenheit"))),
    ToolScenario("flights", "Find me flights from Boston to Denver on 2025-07-04.",
                 (FLIGHTS, BOOK),
                 (("search_flights", {"origin": "BOS", "destination": "DEN",
                                      "date": "2025-07-04"}),),
                 "book_flight", (("destination", "DFW"), ("date", "2025-07-14"),
                                 ("origin", "BWI"))),
    ToolScenario("email", "Email Priya that the launch moved to Thursday.",
                 (EMAIL, DRAFT),
                 (("send_email", {"to": "priya@example.com", "subject": "Launch date",
                                  "body": "The launch moved to Thursday."}),),
                 "draft_email", (("to", "priyanka@example.com"),
                                 ("body", "The launch moved to Tuesday."))),
    ToolScenario("event", "Put a dentist appointment in my calendar for March 3 at 9:30.",
                 (EVENT,),
                 (("create_event", {"title": "Dentist", "date": "2025-03-03",
                                    "time": "09:30"}),),
                 "create_reminder", (("date", "2025-03-13"), ("time", "21:30"))),
    ToolScenario("convert", "How much is 250 euros in dollars?", (CONVERT,),
                 (("convert_currency", {"amount": 250, "source": "EUR", "target": "USD"}),),
                 "get_exchange_rate", (("amount", 25), ("target", "GBP"), ("source", "USD"))),
    ToolScenario("cancel", "Cancel order 48213, it arrived broken.", (ORDER, CANCEL, REFUND),
                 (("cancel_order", {"order_id": "48213", "reason": "damaged"}),),
                 "refund_order", (("order_id", "48231"),)),
    ToolScenario("search", "Show me in-stock running shoes under $120.", (SEARCH,),
                 (("search_products", {"query": "running shoes", "max_price": 120,
                                       "in_stock": True}),),
                 "list_products", (("max_price", 1200), ("in_stock", False))),
    ToolScenario("thermostat", "Set the bedroom to 19 degrees and turn off the kitchen lights.",
                 (THERMO, LIGHTS),
                 (("set_thermostat", {"room": "bedroom", "temperature": 19}),
                  ("set_lights", {"room": "kitchen", "on": False})),
                 "set_heating", (("temperature", 29), ("room", "kitchen"))),
    ToolScenario("transfer", "Send 300 dollars to account 7781 from my savings.", (TRANSFER,),
                 (("transfer_money", {"account": "7781", "amount": 300, "currency": "USD"}),),
                 "request_money", (("amount", 3000), ("account", "7718"))),
    ToolScenario("order_status", "Where is my order 99120?", (ORDER, CANCEL),
                 (("lookup_order", {"order_id": "99120"}),),
                 "cancel_order", (("order_id", "91120"),)),
    ToolScenario("two_cities", "Compare the weather in Oslo and Bergen.", (WEATHER,),
                 (("get_weather", {"city": "Oslo", "unit": "celsius"}),
                  ("get_weather", {"city": "Bergen", "unit": "celsius"})),
                 "get_forecast", (("city", "Stavanger"),)),
    ToolScenario("forecast", "Will it rain in Porto over the next 3 days?", (WEATHER, FORECAST),
                 (("get_forecast", {"city": "Porto", "days": 3}),),
                 "get_weather", (("days", 7), ("city", "Lisbon"))),
)  # fmt: skip


@dataclass(frozen=True)
class JsonScenario:
    id: str
    prompt: str
    schema_name: str | None
    """None: `json_object`; otherwise a `json_schema` response format of that name."""
    document: dict[str, Any]
    changes: tuple[tuple[str, Any], ...]
    """(dotted path, wrong value) choices for the field-changed regression."""


JSON_SCENARIOS: tuple[JsonScenario, ...] = (
    JsonScenario("sentiment", "Classify the sentiment of: 'The delivery was late again.'",
                 "sentiment", {"label": "negative", "confidence": 0.91, "topics": ["delivery"]},
                 (("label", "positive"), ("confidence", 0.19), ("topics.0", "pricing"))),
    JsonScenario("invoice", "Extract the invoice fields from the text below.", "invoice",
                 {"invoice_number": "INV-2291", "total": 1249.5, "currency": "EUR",
                  "due_date": "2025-05-31", "paid": False},
                 (("total", 124.95), ("currency", "USD"), ("due_date", "2025-03-31"),
                  ("paid", True))),
    JsonScenario("person", "Extract the contact from this signature.", None,
                 {"name": "Lena Berg", "title": "CTO", "company": "Nordlys AS",
                  "phone": {"country": "+47", "number": "22 33 44 55"}},
                 (("title", "CFO"), ("company", "Nordlys ASA"), ("phone.country", "+46"))),
    JsonScenario("triage", "Triage this support ticket.", "triage",
                 {"priority": "high", "team": "billing", "escalate": True, "sla_hours": 4},
                 (("priority", "low"), ("escalate", False), ("sla_hours", 48),
                  ("team", "shipping"))),
    JsonScenario("recipe", "Give the recipe as JSON with ingredients and oven settings.", None,
                 {"name": "Focaccia", "oven": {"temperature_c": 220, "minutes": 25},
                  "ingredients": [{"item": "flour", "grams": 500},
                                  {"item": "water", "grams": 400},
                                  {"item": "salt", "grams": 10}]},
                 (("oven.temperature_c", 180), ("ingredients.2.grams", 100),
                  ("oven.minutes", 52))),
    JsonScenario("moderation", "Does this comment break the rules? Answer in JSON.",
                 "moderation", {"allowed": False, "rule": "harassment", "severity": 3},
                 (("allowed", True), ("rule", "spam"), ("severity", 1))),
    JsonScenario("address", "Parse this address into fields.", "address",
                 {"street": "12 Rue de la Paix", "city": "Paris", "postcode": "75002",
                  "country": "FR"},
                 (("city", "Lyon"), ("postcode", "75020"), ("country", "BE"))),
    JsonScenario("meeting_json", "Return the meeting as JSON.", None,
                 {"title": "Quarterly review", "start": "2025-06-12T14:00:00",
                  "duration_minutes": 60, "attendees": ["ana", "ben", "chloe"]},
                 (("start", "2025-06-12T16:00:00"), ("duration_minutes", 30),
                  ("attendees.1", "bob"))),
    JsonScenario("dosage_json", "Give the dosing as JSON.", "dosing",
                 {"drug": "amoxicillin", "dose_mg": 500, "times_per_day": 3,
                  "with_food": True, "max_days": 7},
                 (("dose_mg", 50), ("times_per_day", 6), ("with_food", False),
                  ("drug", "azithromycin"))),
    JsonScenario("stock", "Stock level for SKU A-113 as JSON.", "stock",
                 {"sku": "A-113", "in_stock": 42, "warehouse": "Rotterdam",
                  "backorder": False},
                 (("in_stock", 0), ("warehouse", "Antwerp"), ("sku", "A-131"))),
)  # fmt: skip


@dataclass(frozen=True)
class CodeScenario:
    id: str
    prompt: str
    language: str
    intro: tuple[str, str]
    """Two wordings of the sentence before the code."""
    code: str
    mutations: tuple[tuple[str, str], ...]
    """(text in the code, wrong replacement) choices for the code-changed regression."""
    reformatted: str
    """The same code with other whitespace, line breaks or comments."""


CODE_SCENARIOS: tuple[CodeScenario, ...] = (
    CodeScenario(
        "binary_search", "Write a binary search in Python.", "python",
        ("Here is an iterative binary search:", "This version searches iteratively:"),
        "def search(items, target):\n    lo, hi = 0, len(items) - 1\n    while lo <= hi:\n"
        "        mid = (lo + hi) // 2\n        if items[mid] == target:\n            return mid\n"
        "        if items[mid] < target:\n            lo = mid + 1\n        else:\n"
        "            hi = mid - 1\n    return -1\n",
        (("while lo <= hi", "while lo < hi"), ("mid + 1", "mid"), ("// 2", "/ 2"),
         ("items[mid] < target", "items[mid] > target")),
        "def search(items, target):\n    lo, hi = 0, len(items) - 1\n\n    while lo <= hi:\n"
        "        mid = (lo + hi) // 2  # middle\n        if items[mid] == target:\n"
        "            return mid\n        if items[mid] < target:\n            lo = mid + 1\n"
        "        else:\n            hi = mid - 1\n    return -1\n",
    ),
    CodeScenario(
        "is_leap", "Write a leap year check in JavaScript.", "javascript",
        ("A year is a leap year under these rules:", "This function applies the usual rules:"),
        "function isLeap(year) {\n  return (year % 4 === 0 && year % 100 !== 0) || "
        "year % 400 === 0;\n}\n",
        (("year % 100 !== 0", "year % 100 === 0"), ("|| year", "&& year"),
         ("% 400", "% 40")),
        "function isLeap(year) {\n  return (year % 4 === 0 && year % 100 !== 0)\n"
        "    || year % 400 === 0;\n}\n",
    ),
    CodeScenario(
        "average", "Write a Python function that averages a list, returning 0 for an empty one.",
        "python",
        ("You can guard the empty case first:", "Check for an empty list before dividing:"),
        "def average(values):\n    if not values:\n        return 0\n"
        "    return sum(values) / len(values)\n",
        (("if not values", "if values"), ("/ len(values)", "// len(values)"),
         ("return 0", "return None")),
        "def average(values):\n    # nothing to average\n    if not values:\n        return 0\n"
        "    return sum(values)/len(values)\n",
    ),
    CodeScenario(
        "sql_recent", "Write SQL for orders placed in the last 30 days over 100 euros.", "sql",
        ("This query filters on both conditions:", "Use a WHERE clause with both filters:"),
        "SELECT id, total\nFROM orders\nWHERE created_at >= now() - interval '30 days'\n"
        "  AND total > 100\nORDER BY created_at DESC;\n",
        (("total > 100", "total < 100"), ("'30 days'", "'3 days'"), ("DESC", "ASC"),
         ("AND total", "OR total")),
        "SELECT id, total FROM orders\nWHERE created_at >= now() - interval '30 days' "
        "AND total > 100\nORDER BY created_at DESC;\n",
    ),
    CodeScenario(
        "retry", "Write a Python retry loop with exponential backoff.", "python",
        ("A simple loop with a doubling delay:", "Here the delay doubles after each failure:"),
        "import time\n\ndef retry(call, attempts=5, delay=0.1):\n"
        "    for attempt in range(attempts):\n        try:\n            return call()\n"
        "        except OSError:\n            if attempt == attempts - 1:\n                raise\n"
        "            time.sleep(delay * 2 ** attempt)\n",
        (("2 ** attempt", "2 * attempt"), ("attempts - 1", "attempts + 1"),
         ("attempts=5", "attempts=50")),
        "import time\n\n\ndef retry(call, attempts=5, delay=0.1):\n"
        "    for attempt in range(attempts):\n        try:\n            return call()\n"
        "        except OSError:\n            if attempt == attempts - 1:\n"
        "                raise  # out of attempts\n"
        "            time.sleep(delay * 2**attempt)\n",
    ),
    CodeScenario(
        "clamp", "Write a clamp function in TypeScript.", "typescript",
        ("Clamp with Math.min and Math.max:", "Combine min and max like this:"),
        "export function clamp(x: number, lo: number, hi: number): number {\n"
        "  return Math.min(Math.max(x, lo), hi);\n}\n",
        (("Math.min(Math.max(x, lo), hi)", "Math.max(Math.min(x, lo), hi)"),
         ("(x, lo)", "(x, hi)")),
        "export function clamp(x: number, lo: number, hi: number): number {\n"
        "    return Math.min(Math.max(x, lo), hi)\n}\n",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class LanguageScenario:
    id: str
    prompt: str
    english: tuple[str, str]
    """Two English wordings of the answer."""
    translations: tuple[tuple[str, str], ...]
    """(language code, the answer in that language)."""


LANGUAGE_SCENARIOS: tuple[LanguageScenario, ...] = (
    LanguageScenario(
        "museum", "What time does the museum open?",
        ("The museum opens at 9 am and closes at 6 pm. It is closed on Mondays.",
         "Opening hours are 9 am to 6 pm, every day except Monday."),
        (("es", "El museo abre a las 9 de la mañana y cierra a las 6 de la tarde. Está cerrado "
                "los lunes."),
         ("fr", "Le musée ouvre à 9 h et ferme à 18 h. Il est fermé le lundi."),
         ("de", "Das Museum öffnet um 9 Uhr und schließt um 18 Uhr. Montags ist es "
                "geschlossen."),
         ("it", "Il museo apre alle 9 e chiude alle 18. È chiuso il lunedì."),
         ("pt", "O museu abre às 9 horas e fecha às 18 horas. Está fechado às segundas-feiras."),
         ("nl", "Het museum gaat om 9 uur open en sluit om 18 uur. Op maandag is het "
                "gesloten.")),
    ),
    LanguageScenario(
        "password_reset", "How do I reset my password?",
        ("Open the login page and click Forgot password. We will send you a link that is valid "
         "for one hour.",
         "Click Forgot password on the login page, and use the link we email you within an "
         "hour."),
        (("es", "Abre la página de inicio de sesión y haz clic en ¿Olvidaste tu contraseña? Te "
                "enviaremos un enlace que es válido durante una hora."),
         ("fr", "Ouvrez la page de connexion et cliquez sur Mot de passe oublié. Nous vous "
                "enverrons un lien valable pendant une heure."),
         ("de", "Öffnen Sie die Anmeldeseite und klicken Sie auf Passwort vergessen. Wir senden "
                "Ihnen einen Link, der eine Stunde lang gültig ist."),
         ("it", "Apri la pagina di accesso e fai clic su Password dimenticata. Ti invieremo un "
                "link valido per un'ora."),
         ("pt", "Abra a página de login e clique em Esqueci a senha. Enviaremos um link que é "
                "válido por uma hora.")),
    ),
    LanguageScenario(
        "return_policy", "What is your return policy?",
        ("You can return any item within 30 days for a full refund. The item must be unused "
         "and in its original packaging.",
         "Returns are accepted for 30 days with a full refund, as long as the item is unused "
         "and in the original box."),
        (("es", "Puede devolver cualquier artículo en un plazo de 30 días y le devolveremos "
                "todo el dinero. El artículo debe estar sin usar y en su embalaje original."),
         ("fr", "Vous pouvez retourner tout article dans les 30 jours pour un remboursement "
                "complet. L'article doit être inutilisé et dans son emballage d'origine."),
         ("de", "Sie können jeden Artikel innerhalb von 30 Tagen zurückgeben und erhalten den "
                "vollen Betrag zurück. Der Artikel muss unbenutzt und in der "
                "Originalverpackung sein."),
         ("it", "Puoi restituire qualsiasi articolo entro 30 giorni per un rimborso completo. "
                "L'articolo deve essere inutilizzato e nella confezione originale."),
         ("ja", "ご購入から30日以内であれば、全額返金で返品できます。商品は未使用で、元の"
                "箱に入っている必要があります。")),
    ),
    LanguageScenario(
        "wifi", "How do I connect to the office wifi?",
        ("Choose the network called Office-Guest and enter the password printed at the "
         "reception desk. The connection lasts for the rest of the day.",
         "Connect to Office-Guest with the password from the reception desk; it stays valid "
         "until the end of the day."),
        (("es", "Elige la red llamada Office-Guest e introduce la contraseña que está impresa "
                "en la recepción. La conexión dura el resto del día."),
         ("fr", "Choisissez le réseau appelé Office-Guest et saisissez le mot de passe affiché "
                "à l'accueil. La connexion dure jusqu'à la fin de la journée."),
         ("de", "Wählen Sie das Netzwerk Office-Guest und geben Sie das Passwort ein, das am "
                "Empfang ausgedruckt ist. Die Verbindung gilt für den Rest des Tages."),
         ("pt", "Escolha a rede chamada Office-Guest e digite a senha impressa na recepção. A "
                "conexão dura o resto do dia."),
         ("ru", "Выберите сеть Office-Guest и введите пароль, напечатанный на стойке "
                "регистрации. Подключение действует до конца дня.")),
    ),
    LanguageScenario(
        "battery", "How can I make my laptop battery last longer?",
        ("Lower the screen brightness and close apps you are not using. Turning on battery "
         "saver mode also helps a lot.",
         "Dim the screen, quit the apps you don't need and switch on battery saver."),
        (("es", "Baja el brillo de la pantalla y cierra las aplicaciones que no estés usando. "
                "Activar el modo de ahorro de batería también ayuda mucho."),
         ("fr", "Baissez la luminosité de l'écran et fermez les applications que vous "
                "n'utilisez pas. Le mode économiseur de batterie aide aussi beaucoup."),
         ("de", "Verringern Sie die Bildschirmhelligkeit und schließen Sie Apps, die Sie nicht "
                "benutzen. Der Energiesparmodus hilft ebenfalls sehr."),
         ("it", "Riduci la luminosità dello schermo e chiudi le app che non stai usando. Anche "
                "la modalità risparmio energetico aiuta molto."),
         ("zh", "降低屏幕亮度，并关闭不使用的应用程序。打开省电模式也很有帮助。")),  # noqa: RUF001
    ),
    LanguageScenario(
        "parking", "Where can I park near the office?",
        ("There is a public car park on Station Road, two minutes from the office. It costs "
         "about 8 pounds a day.",
         "The nearest option is the public car park on Station Road, a two minute walk away, at "
         "roughly 8 pounds per day."),
        (("fr", "Il y a un parking public sur Station Road, à deux minutes du bureau. Il coûte "
                "environ 8 livres par jour."),
         ("es", "Hay un aparcamiento público en Station Road, a dos minutos de la oficina. "
                "Cuesta unas 8 libras al día."),
         ("de", "Es gibt ein öffentliches Parkhaus in der Station Road, zwei Minuten vom Büro "
                "entfernt. Es kostet etwa 8 Pfund pro Tag."),
         ("pl", "Na Station Road, dwie minuty od biura, jest parking publiczny. Kosztuje około "
                "8 funtów dziennie.")),
    ),
)  # fmt: skip

REFUSALS: tuple[str, ...] = (
    "I'm sorry, but I can't help with that.",
    "I'm sorry, I can't provide that information.",
    "I cannot help with this request.",
    "I'm afraid I can't assist with that.",
    "Sorry, but I am unable to help with this request.",
    "I won't be able to help with that, but a professional can.",
    "As an AI, I can't give personal advice on this.",
    "I'm not able to provide guidance on that topic.",
    "I must decline to answer this question.",
    "Unfortunately, I can't share that. Is there something else I can help with?",
    "I'm unable to assist with this. Please contact a qualified professional.",
    "Sorry, I can't do that.",
)
