"""Write ares-align's own sample problems under data/, in the released ScienceQA and A-OKVQA formats.

These are questions we wrote, with images we draw here; they are not the real datasets. The output is
deterministic: `python scripts/make_sample_data.py` rewrites the same files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent / "data"

# --- images ------------------------------------------------------------------------------------------------

PALETTE = {
    "red": (220, 40, 40),
    "blue": (40, 80, 220),
    "green": (40, 170, 60),
    "yellow": (235, 200, 30),
    "gray": (128, 128, 128),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "brown": (130, 80, 30),
    "orange": (240, 140, 20),
    "sky": (150, 200, 250),
}


def bar_chart(values: list[int], colors: list[str]) -> Image.Image:
    img = Image.new("RGB", (128, 128), "white")
    d = ImageDraw.Draw(img)
    d.line([(10, 118), (120, 118)], fill="black")
    width = 100 // len(values)
    for k, (v, c) in enumerate(zip(values, colors, strict=True)):
        x = 15 + k * width
        d.rectangle([x, 118 - v, x + width - 8, 118], fill=PALETTE[c])
    return img


def shapes(kind: str, count: int, color: str) -> Image.Image:
    img = Image.new("RGB", (128, 128), "white")
    d = ImageDraw.Draw(img)
    for k in range(count):
        x, y = 10 + (k % 3) * 40, 10 + (k // 3) * 40
        box = [x, y, x + 28, y + 28]
        if kind == "circle":
            d.ellipse(box, fill=PALETTE[color])
        elif kind == "square":
            d.rectangle(box, fill=PALETTE[color])
        else:
            d.polygon([(x + 14, y), (x + 28, y + 28), (x, y + 28)], fill=PALETTE[color])
    return img


def magnets(facing: str) -> Image.Image:
    """Two bar magnets; `facing` is 'NS' (opposite poles face) or 'NN' (like poles face)."""
    img = Image.new("RGB", (160, 64), "white")
    d = ImageDraw.Draw(img)
    left = [("S", "blue"), ("N", "red")]
    right = [("S", "blue"), ("N", "red")] if facing == "NS" else [("N", "red"), ("S", "blue")]
    for x0, poles in ((5, left), (90, right)):
        for k, (_, color) in enumerate(poles):
            d.rectangle([x0 + k * 32, 20, x0 + k * 32 + 31, 44], fill=PALETTE[color])
    return img


def map_with_highlight(cell: int) -> Image.Image:
    """A 4x4 grid 'map' with one highlighted region."""
    img = Image.new("RGB", (128, 128), PALETTE["sky"])
    d = ImageDraw.Draw(img)
    for k in range(16):
        x, y = (k % 4) * 32, (k // 4) * 32
        d.rectangle([x + 1, y + 1, x + 30, y + 30], fill=PALETTE["green"] if k != cell else PALETTE["orange"])
    return img


def thermometer(level: int) -> Image.Image:
    img = Image.new("RGB", (48, 128), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([18, 8, 30, 110], outline="black")
    d.rectangle([19, 110 - level, 29, 110], fill=PALETTE["red"])
    d.ellipse([12, 104, 36, 124], fill=PALETTE["red"])
    return img


def scene(sky: str, ground: str, objects: list[tuple[str, str]]) -> Image.Image:
    """A tiny 'photo': sky, ground and a few objects, for A-OKVQA-style questions."""
    img = Image.new("RGB", (160, 120), PALETTE[sky])
    d = ImageDraw.Draw(img)
    d.rectangle([0, 80, 160, 120], fill=PALETTE[ground])
    for k, (kind, color) in enumerate(objects):
        x = 15 + k * 45
        if kind == "ball":
            d.ellipse([x, 60, x + 20, 80], fill=PALETTE[color])
        elif kind == "car":
            d.rectangle([x, 62, x + 36, 78], fill=PALETTE[color])
            d.ellipse([x + 4, 74, x + 12, 82], fill="black")
            d.ellipse([x + 24, 74, x + 32, 82], fill="black")
        elif kind == "tree":
            d.rectangle([x + 8, 50, x + 14, 80], fill=PALETTE["brown"])
            d.ellipse([x, 25, x + 22, 55], fill=PALETTE[color])
        elif kind == "sun":
            d.ellipse([x, 5, x + 24, 29], fill=PALETTE[color])
        elif kind == "umbrella":
            d.pieslice([x, 40, x + 36, 76], 180, 360, fill=PALETTE[color])
            d.line([(x + 18, 58), (x + 18, 80)], fill="black", width=2)
    return img


# --- ScienceQA-format problems -----------------------------------------------------------------------------

NAT, SOC, LAN = "natural science", "social science", "language science"

# (question, choices, answer, hint, image builder or None, subject, grade, topic, category, skill, lecture, solution)
SCIENCEQA = [
    (
        "Will these magnets attract or repel each other?",
        ["attract", "repel"],
        0,
        "",
        lambda: magnets("NS"),
        NAT,
        3,
        "physics",
        "Magnets",
        "Predict magnetic forces",
        "Magnets can pull or push on each other without touching. When magnets attract, they pull together. "
        "When magnets repel, they push apart. Opposite poles attract, and like poles repel.",
        "The picture shows the north pole of one magnet facing the south pole of the other. Opposite poles "
        "attract. So, these magnets will attract each other.",
    ),
    (
        "Will these magnets attract or repel each other?",
        ["attract", "repel"],
        1,
        "",
        lambda: magnets("NN"),
        NAT,
        3,
        "physics",
        "Magnets",
        "Predict magnetic forces",
        "Magnets can pull or push on each other without touching. Opposite poles attract, and like poles repel.",
        "The north pole of one magnet faces the north pole of the other. Like poles repel. So, these magnets "
        "will repel each other.",
    ),
    (
        "Which bar is the tallest?",
        ["the red bar", "the blue bar", "the green bar"],
        1,
        "",
        lambda: bar_chart([40, 90, 60], ["red", "blue", "green"]),
        NAT,
        2,
        "science-and-engineering-practices",
        "Graphs",
        "Read a bar graph",
        "A bar graph uses bars to compare amounts. A taller bar shows a larger amount.",
        "The blue bar reaches the highest point on the graph. So, the blue bar is the tallest.",
    ),
    (
        "How many circles are in the picture?",
        ["4", "5", "6"],
        1,
        "",
        lambda: shapes("circle", 5, "red"),
        NAT,
        1,
        "science-and-engineering-practices",
        "Counting",
        "Count objects",
        "To count objects, point to each one once and say the next number.",
        "Counting each circle once gives 1, 2, 3, 4, 5. So, there are 5 circles.",
    ),
    (
        "Which shape is shown in the picture?",
        ["triangle", "square", "circle"],
        0,
        "",
        lambda: shapes("triangle", 1, "green"),
        NAT,
        1,
        "science-and-engineering-practices",
        "Shapes",
        "Identify shapes",
        "A triangle has three sides. A square has four equal sides. A circle has no corners.",
        "The shape has three sides and three corners. So, it is a triangle.",
    ),
    (
        "Which region on the map is highlighted?",
        ["the top-left region", "the bottom-right region"],
        1,
        "The map is divided into sixteen regions.",
        lambda: map_with_highlight(15),
        SOC,
        4,
        "geography",
        "Reading maps",
        "Read a grid map",
        "A map is a drawing of a place. Grid maps divide a place into rows and columns.",
        "The orange region is in the last row and the last column. So, the bottom-right region is highlighted.",
    ),
    (
        "Is the temperature shown by the thermometer hot or cold?",
        ["hot", "cold"],
        0,
        "The thermometer is almost full.",
        lambda: thermometer(90),
        NAT,
        3,
        "physics",
        "Temperature",
        "Read a thermometer",
        "A thermometer measures temperature. When the red liquid rises high, the temperature is high.",
        "The red liquid reaches near the top of the thermometer. So, the temperature is hot.",
    ),
    (
        "Which color has the shortest bar?",
        ["yellow", "red", "blue"],
        0,
        "",
        lambda: bar_chart([20, 70, 50], ["yellow", "red", "blue"]),
        NAT,
        2,
        "science-and-engineering-practices",
        "Graphs",
        "Read a bar graph",
        "A bar graph uses bars to compare amounts. A shorter bar shows a smaller amount.",
        "The yellow bar is the lowest bar on the graph. So, yellow has the shortest bar.",
    ),
    (
        "How many squares are in the picture?",
        ["2", "3", "4"],
        2,
        "",
        lambda: shapes("square", 4, "blue"),
        NAT,
        1,
        "science-and-engineering-practices",
        "Counting",
        "Count objects",
        "To count objects, point to each one once.",
        "Counting each square once gives 4. So, there are 4 squares.",
    ),
    (
        "Which is a property of the object shown: the thermometer reads low?",
        ["yes", "no"],
        0,
        "The red liquid is near the bottom.",
        lambda: thermometer(10),
        NAT,
        4,
        "physics",
        "Temperature",
        "Read a thermometer",
        "A thermometer measures temperature. A low liquid level means a low temperature.",
        "The red liquid is near the bottom of the thermometer. So, the thermometer reads low.",
    ),
    (
        "Which of these states is farthest north?",
        ["Texas", "Montana", "Florida"],
        1,
        "",
        None,
        SOC,
        4,
        "geography",
        "Geography",
        "Read a map: cardinal directions",
        "Maps have four cardinal directions: north, south, east, and west. North is toward the top of most maps.",
        "Montana borders Canada. Texas and Florida are in the south of the U.S. So, Montana is farthest north.",
    ),
    (
        "What is the capital of France?",
        ["Paris", "Lyon", "Marseille"],
        0,
        "",
        None,
        SOC,
        5,
        "geography",
        "Capitals",
        "Identify capitals",
        "A capital is a city where a country's government is located.",
        "The capital of France is Paris. Paris is also the largest city in France.",
    ),
    (
        "Which word is a noun?",
        ["run", "table", "quickly"],
        1,
        "",
        None,
        LAN,
        2,
        "grammar",
        "Parts of speech",
        "Identify nouns",
        "A noun names a person, place, or thing. A verb tells what someone does.",
        "Table names a thing. Run is a verb, and quickly is an adverb. So, table is a noun.",
    ),
    (
        "Which sentence is a complete sentence?",
        ["The dog barked loudly.", "Because the dog."],
        0,
        "",
        None,
        LAN,
        3,
        "writing-strategies",
        "Sentences",
        "Identify complete sentences",
        "A complete sentence has a subject and a verb. It expresses a complete thought.",
        '"The dog barked loudly." has a subject, the dog, and a verb, barked. "Because the dog." has no verb, '
        "so it is a fragment. So, the first one is complete.",
    ),
    (
        "Which word would you find on a dictionary page with the guide words bat - bird?",
        ["bee", "bus"],
        0,
        "",
        None,
        LAN,
        3,
        "reference-skills",
        "Dictionary",
        "Use guide words",
        "Guide words appear at the top of a dictionary page. A word is on the page if it comes between the guide "
        "words in alphabetical order.",
        "Bee comes after bat and before bird in alphabetical order. Bus comes after bird. So, bee is on the page.",
    ),
    (
        "Which material is a good conductor of electricity?",
        ["copper", "rubber", "wood"],
        0,
        "",
        None,
        NAT,
        6,
        "physics",
        "Materials",
        "Identify conductors",
        "An electrical conductor lets electricity pass through it easily. Metals are good conductors.",
        "Copper is a metal. Rubber and wood are insulators. So, copper is a good conductor of electricity.",
    ),
    (
        "What is the boiling point of water at sea level?",
        ["50 \u00b0C", "100 \u00b0C", "150 \u00b0C"],
        1,
        "",
        None,
        NAT,
        5,
        "chemistry",
        "States of matter",
        "Identify boiling points",
        "Matter can change state when it is heated or cooled. Boiling is the change from a liquid to a gas.",
        "At sea level, water boils at 100 \u00b0C. At higher places, e.g. on Mt. Everest, it boils at a lower "
        "temperature. So, the answer is 100 \u00b0C.",
    ),
    (
        "Which animal is a mammal?",
        ["shark", "dolphin", "trout"],
        1,
        "",
        None,
        NAT,
        2,
        "biology",
        "Classification",
        "Identify mammals",
        "Mammals have hair or fur and feed their young milk. Fish live in water and breathe with gills.",
        "A dolphin breathes air and feeds its young milk. Sharks and trout are fish. So, a dolphin is a mammal.",
    ),
    (
        "What is the speed of an object that travels 30 m in 2 s?",
        ["15 m/s", "60 m/s", "32 m/s"],
        0,
        "",
        None,
        NAT,
        8,
        "physics",
        "Velocity",
        "Calculate speed",
        "Speed is the distance an object travels divided by the time it takes. Its unit can be m/s.",
        "The speed is 30 m divided by 2 s. That is 15 m/s. So, the answer is 15 m/s.",
    ),
    (
        "Which change is a chemical change?",
        ["melting ice", "burning wood", "cutting paper"],
        1,
        "",
        None,
        NAT,
        7,
        "chemistry",
        "Physical and chemical change",
        "Identify chemical changes",
        "In a chemical change, the type of matter changes. In a physical change, only the form changes.",
        "Burning wood makes ash and smoke, which are new kinds of matter. Melting ice and cutting paper are "
        "physical changes. So, burning wood is a chemical change.",
    ),
    (
        "What is the mass of a typical apple?",
        ["150 g", "150 kg"],
        0,
        "Select the better estimate.",
        None,
        NAT,
        3,
        "units-and-measurement",
        "Units",
        "Choose metric units of mass",
        "Mass tells how heavy something is. A gram is light; a kilogram is 1,000 g.",
        "An apple is light enough to hold in one hand. 150 kg is heavier than a person. So, 150 g is better.",
    ),
    (
        "Which organ pumps blood through the body?",
        ["the heart", "the lungs", "the stomach"],
        0,
        "",
        None,
        NAT,
        4,
        "biology",
        "Body systems",
        "Identify organ functions",
        "Organs do jobs for the body. The circulatory system moves blood.",
        "The heart is a muscle that pumps blood through blood vessels. So, the heart pumps blood.",
    ),
    (
        "Which tense does the sentence use? Maria will plant tomatoes.",
        ["past", "present", "future"],
        2,
        "",
        None,
        LAN,
        4,
        "grammar",
        "Verb tense",
        "Identify verb tense",
        "Present tense tells what is happening now. Past tense tells what already happened. Future tense tells "
        "what will happen.",
        "The sentence uses will plant. So, it is in future tense.",
    ),
    (
        "Which planet is closest to the Sun?",
        ["Mercury", "Venus", "Mars"],
        0,
        "",
        None,
        NAT,
        5,
        "earth-science",
        "Solar system",
        "Identify planets",
        "The Solar System has eight planets. They orbit the Sun at different distances.",
        "Mercury is the planet nearest the Sun, about 0.39 AU away. So, the answer is Mercury.",
    ),
    (
        "Which economic term describes a good that people want but is limited?",
        ["scarce", "free"],
        0,
        "Ana wants concert tickets, but only 20 are left.",
        None,
        SOC,
        6,
        "economics",
        "Supply and demand",
        "Identify scarcity",
        "Scarcity means there is not enough of something for everyone who wants it.",
        "Only 20 tickets are left and more people want them. So, the tickets are scarce.",
    ),
    (
        "Which figure of speech is used? The wind whispered through the trees.",
        ["personification", "simile"],
        0,
        "",
        None,
        LAN,
        7,
        "figurative-language",
        "Figures of speech",
        "Identify personification",
        "Personification gives human traits to nonhuman things. A simile compares two things using like or as.",
        "Wind cannot really whisper. The sentence gives the wind a human action. So, it is personification.",
    ),
    (
        "What is the main gas that plants take in for photosynthesis?",
        ["oxygen", "carbon dioxide", "helium"],
        1,
        "",
        None,
        NAT,
        6,
        "biology",
        "Photosynthesis",
        "Identify photosynthesis inputs",
        "Plants make food by photosynthesis. They use light, water, and carbon dioxide.",
        "Plants take in carbon dioxide from the air and release oxygen. So, the answer is carbon dioxide.",
    ),
    (
        "Which document begins with We the People?",
        ["the U.S. Constitution", "the Magna Carta"],
        0,
        "",
        None,
        SOC,
        8,
        "civics",
        "Government",
        "Identify founding documents",
        "The U.S. Constitution was written in 1787. It set up the government of the United States.",
        "The Preamble of the U.S. Constitution starts with We the People. So, the answer is the U.S. "
        "Constitution.",
    ),
    (
        "Which force pulls objects toward Earth?",
        ["gravity", "friction"],
        0,
        "A ball falls after it is dropped.",
        None,
        NAT,
        3,
        "physics",
        "Forces",
        "Identify forces",
        "A force is a push or a pull. Gravity pulls objects toward each other. Friction slows moving objects.",
        "The ball falls because gravity pulls it toward Earth. So, the answer is gravity.",
    ),
    (
        "What is 2.5 kg in grams?",
        ["25 g", "250 g", "2,500 g"],
        2,
        "",
        None,
        NAT,
        9,
        "units-and-measurement",
        "Units",
        "Convert metric units",
        "One kilogram equals 1,000 grams.",
        "Multiply 2.5 by 1,000. 2.5 kg is 2,500 g. So, the answer is 2,500 g.",
    ),
]

# Every fifth problem goes to val and every fifth to test, so each split has image, hint-only and no-context
# problems (ScienceQA's IMG / TXT / NO groups); the first image problems stay in train.
SCIENCEQA_SPLITS = [("train", "train", "train", "val", "test")[k % 5] for k in range(30)]
SCIENCEQA_SPLITS[23], SCIENCEQA_SPLITS[27] = "train", "val"  # so val has a social-science problem too


def write_scienceqa(out: Path) -> None:
    problems, splits = {}, {"train": [], "val": [], "test": []}
    images = out / "images"
    for k, row in enumerate(SCIENCEQA):
        (
            question,
            choices,
            answer,
            hint,
            image,
            subject,
            grade,
            topic,
            category,
            skill,
            lecture,
            solution,
        ) = row
        pid = str(100 + k)
        split = SCIENCEQA_SPLITS[k]
        image_name = None
        if image is not None:
            image_name = "image.png"
            (images / split / pid).mkdir(parents=True, exist_ok=True)
            image().save(images / split / pid / image_name)
        problems[pid] = {
            "question": question,
            "choices": choices,
            "answer": answer,
            "hint": hint,
            "image": image_name,
            "task": "closed choice",
            "grade": f"grade{grade}",
            "subject": subject,
            "topic": topic,
            "category": category,
            "skill": skill,
            "lecture": lecture,
            "solution": solution,
            "split": split,
        }
        splits[split].append(pid)
    splits["minitrain"] = splits["train"][:6]
    splits["minival"] = splits["val"][:3]
    splits["minitest"] = splits["test"][:3]
    (out / "problems.json").write_text(json.dumps(problems, indent=2, ensure_ascii=False) + "\n")
    (out / "pid_splits.json").write_text(json.dumps(splits, indent=2) + "\n")


# --- A-OKVQA-format problems -------------------------------------------------------------------------------

# (scene args, question, choices, correct index, direct answers (10), rationales (3))
AOKVQA = [
    (
        ("sky", "green", [("tree", "green"), ("sun", "yellow")]),
        "What season is it most likely to be?",
        ["winter", "summer", "autumn", "spring"],
        1,
        ["summer"] * 6 + ["spring"] * 3 + ["sunny"],
        [
            "The tree is full of green leaves and the sun is shining.",
            "Bright sun and green leaves suggest summer.",
            "There is no snow and the leaves are green.",
        ],
    ),
    (
        ("gray", "gray", [("umbrella", "red")]),
        "Why is the person carrying this object?",
        ["it is raining", "it is hot", "to play", "to sell it"],
        0,
        ["rain"] * 7 + ["raining"] * 2 + ["wet"],
        [
            "The sky is gray and an umbrella is open.",
            "People open umbrellas when it rains.",
            "A gray sky means rain is likely.",
        ],
    ),
    (
        ("sky", "gray", [("car", "red"), ("car", "blue")]),
        "Where are these vehicles?",
        ["on a road", "in the sea", "in the sky", "in a house"],
        0,
        ["road"] * 6 + ["street"] * 4,
        [
            "Cars drive on roads.",
            "The cars sit on a gray paved surface.",
            "The gray ground looks like a street.",
        ],
    ),
    (
        ("sky", "green", [("ball", "orange")]),
        "What game could be played with this object?",
        ["basketball", "chess", "cards", "golf"],
        0,
        ["basketball"] * 8 + ["catch"] * 2,
        [
            "The orange ball looks like a basketball.",
            "Basketballs are orange.",
            "An orange ball is used in basketball.",
        ],
    ),
    (
        ("sky", "white", [("tree", "green")]),
        "What covers the ground?",
        ["snow", "grass", "sand", "water"],
        0,
        ["snow"] * 9 + ["ice"],
        [
            "The ground is white.",
            "White ground in a picture like this is snow.",
            "Snow is white and covers the ground.",
        ],
    ),
    (
        ("sky", "brown", [("tree", "orange")]),
        "What season do the leaves suggest?",
        ["autumn", "summer", "spring", "winter"],
        0,
        ["fall"] * 5 + ["autumn"] * 5,
        ["The leaves are orange.", "Leaves turn orange in the fall.", "Orange leaves mean it is autumn."],
    ),
    (
        ("black", "gray", [("car", "yellow")]),
        "What time of day is it?",
        ["night", "noon", "morning", "afternoon"],
        0,
        ["night"] * 8 + ["evening"] * 2,
        ["The sky is black.", "A dark sky means it is night.", "There is no sunlight in the sky."],
    ),
    (
        ("sky", "green", [("ball", "white"), ("ball", "white")]),
        "How many balls are there?",
        ["two", "one", "three", "four"],
        0,
        ["2"] * 8 + ["two"] * 2,
        [
            "There are two white balls.",
            "I count two balls on the grass.",
            "Two round white objects are visible.",
        ],
    ),
    (
        ("sky", "yellow", [("sun", "orange")]),
        "What is the ground most likely made of?",
        ["sand", "snow", "water", "grass"],
        0,
        ["sand"] * 9 + ["dirt"],
        [
            "The ground is yellow like sand.",
            "A yellow ground under a hot sun looks like a desert.",
            "Deserts are covered in sand.",
        ],
    ),
    (
        ("sky", "green", [("car", "green"), ("tree", "green")]),
        "What color is the car?",
        ["green", "red", "blue", "black"],
        0,
        ["green"] * 10,
        ["The car is painted green.", "The vehicle is green.", "It has the same color as the tree."],
    ),
    (
        ("sky", "sky", [("ball", "red")]),
        "Where is the ball?",
        ["in the air", "under the ground", "in a box", "in water"],
        0,
        ["air"] * 5 + ["sky"] * 5,
        ["The ball is surrounded by sky.", "The ball is in the air.", "There is blue all around the ball."],
    ),
    (
        ("gray", "green", [("umbrella", "blue"), ("umbrella", "yellow")]),
        "What is the weather like?",
        ["rainy", "sunny", "snowy", "hot"],
        0,
        ["rainy"] * 6 + ["cloudy"] * 4,
        ["People use umbrellas when it rains.", "The sky is gray and cloudy.", "Two umbrellas are open."],
    ),
    (
        ("sky", "gray", [("car", "red")]),
        "What is needed to drive this vehicle?",
        ["a driver", "a sail", "wings", "a rope"],
        0,
        ["driver"] * 7 + ["fuel"] * 3,
        ["A car needs someone to drive it.", "Cars are driven by drivers.", "A person drives a car."],
    ),
    (
        ("sky", "green", [("tree", "green"), ("tree", "green"), ("tree", "green")]),
        "What kind of place is this?",
        ["a park", "an ocean", "a kitchen", "a desert"],
        0,
        ["park"] * 6 + ["forest"] * 4,
        [
            "There are several trees on grass.",
            "Trees and grass are common in a park.",
            "It is a green outdoor area.",
        ],
    ),
    (
        ("sky", "white", [("ball", "white")]),
        "What could the ball be made of?",
        ["snow", "metal", "glass", "wood"],
        0,
        ["snow"] * 8 + ["ice"] * 2,
        [
            "The ball is white like the snow.",
            "It lies on a snowy ground.",
            "A white ball on snow is a snowball.",
        ],
    ),
    (
        ("sky", "green", [("sun", "yellow"), ("ball", "red")]),
        "Is it day or night?",
        ["day", "night", "evening", "midnight"],
        0,
        ["day"] * 9 + ["daytime"],
        ["The sun is in the sky.", "The sky is bright blue.", "Sunshine means it is daytime."],
    ),
    (
        ("black", "white", [("tree", "green")]),
        "Why is the ground white?",
        ["snow", "paint", "sand", "milk"],
        0,
        ["snow"] * 10,
        ["It snowed.", "Snow covers the ground.", "White ground in winter is snow."],
    ),
    (
        ("sky", "gray", [("car", "blue"), ("car", "yellow"), ("car", "red")]),
        "How many cars are shown?",
        ["three", "two", "one", "four"],
        0,
        ["3"] * 9 + ["three"],
        ["There are three cars.", "I count three vehicles.", "Three cars are on the road."],
    ),
    (
        ("sky", "green", [("umbrella", "orange")]),
        "What does the object protect from here?",
        ["the sun", "the snow", "the wind", "the sea"],
        0,
        ["sun"] * 7 + ["heat"] * 3,
        [
            "The sky is clear, so the umbrella gives shade.",
            "An umbrella on a sunny day protects from the sun.",
            "There is no rain, so it blocks sunlight.",
        ],
    ),
    (
        ("sky", "brown", [("car", "black")]),
        "What surface is the car on?",
        ["dirt", "water", "ice", "carpet"],
        0,
        ["dirt"] * 8 + ["mud"] * 2,
        ["The ground is brown.", "Brown ground is dirt.", "The car drives on a dirt road."],
    ),
]

AOKVQA_SPLITS = ["train"] * 12 + ["val"] * 8


def write_aokvqa(out: Path) -> None:
    records: dict[str, list] = {"train": [], "val": []}
    for k, (scene_args, question, choices, correct, direct, rationales) in enumerate(AOKVQA):
        split = AOKVQA_SPLITS[k]
        image_id = 500000 + 37 * k
        folder = out / "coco" / f"{split}2017"
        folder.mkdir(parents=True, exist_ok=True)
        scene(*scene_args).save(folder / f"{image_id:012d}.jpg", quality=90)
        assert len(direct) == 10 and len(rationales) == 3
        shift = k % len(choices)  # vary the position of the correct choice
        choices = choices[shift:] + choices[:shift]
        correct = (correct - shift) % len(choices)
        records[split].append(
            {
                "split": split,
                "image_id": image_id,
                "question_id": f"ares{k:04d}sample",
                "question": question,
                "choices": choices,
                "correct_choice_idx": correct,
                "direct_answers": direct,
                "difficult_direct_answer": False,
                "rationales": rationales,
            }
        )
    for split, rows in records.items():
        (out / f"aokvqa_v1p0_{split}.json").write_text(json.dumps(rows, indent=2) + "\n")


def main() -> None:
    for name, writer in (("scienceqa", write_scienceqa), ("aokvqa", write_aokvqa)):
        out = ROOT / name
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        writer(out)
    print(f"wrote sample data under {ROOT}")


if __name__ == "__main__":
    main()
