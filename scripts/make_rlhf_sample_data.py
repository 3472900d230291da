"""Write ares-align's own sample data for the SPPO RLHF recipes under data/imdb/ and data/tldr/.

The reviews, posts, summaries and preference pairs are ours, composed here from phrase banks with a fixed
seed; they are not IMDB or Reddit text. They follow the hub datasets' files and columns so the real loaders
read them unchanged:

- `data/imdb/plain_text/{train,test}-00000-of-00001.parquet`: `text`, `label` (0 neg, 1 pos), as
  `stanfordnlp/imdb`.
- `data/tldr/sft/data/{train,validation,test}-00000-of-00001.parquet`: `prompt` ("SUBREDDIT: r/...\\n\\nTITLE:
  ...\\n\\nPOST: ...\\n\\nTL;DR:") and `completion` (" summary"), as `trl-lib/tldr`.
- `data/tldr/preference/data/{train,validation}-00000-of-00001.parquet`: `prompt`, `chosen`, `rejected`, as
  `trl-lib/tldr-preference`.

`python scripts/make_rlhf_sample_data.py` rewrites the same files.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent / "data"

# --- IMDB-style reviews --------------------------------------------------------------------------------------

TITLES = [
    "The Lantern Keeper",
    "Harbor of Glass",
    "Midnight on Elm Road",
    "The Last Orchard",
    "Paper Kings",
    "A Winter in Dover",
    "The Copper Bridge",
    "Silent Tide",
    "Crimson Meadow",
    "The Long Hallway",
    "Salt and Iron",
    "Northern Lights Motel",
    "The Clockmaker's Son",
    "Ghosts of Avalon Street",
    "Blue Canyon",
    "The Quiet Brigade",
    "Seven Lanterns",
    "River of Ash",
    "The Glass Menagerie Hotel",
    "Dust over Tulsa",
    "The Garden Wall",
    "Echo Valley",
    "The Fifth Season",
    "Broken Compass",
    "The Painter's Wife",
    "Storm over Lisbon",
    "Half Moon Diner",
    "The Stone Circle",
    "Velvet Alley",
    "Iron Sky Rising",
    "The Orchid Thief",
    "Wolves at the Door",
    "Tin Soldiers",
    "The Marble Staircase",
]
GENRES = [
    "drama",
    "comedy",
    "thriller",
    "western",
    "science fiction film",
    "horror film",
    "musical",
    "romance",
    "war film",
    "mystery",
    "family film",
    "crime drama",
]
PEOPLE = [
    "Anna Berg",
    "Marco Reyes",
    "Helen Park",
    "Tom Whitaker",
    "Lena Novak",
    "Omar Haddad",
    "Grace Liu",
    "Victor Hale",
    "Ruth Adler",
    "Daniel Okafor",
    "Ingrid Sol",
    "Paul Mercer",
    "Nina Castillo",
    "Jack Doyle",
    "Sara Lindqvist",
    "Ben Archer",
]
ROLES = [
    "a retired sailor",
    "a young teacher",
    "two estranged brothers",
    "a small town sheriff",
    "a struggling painter",
    "a family of farmers",
    "a lonely astronaut",
    "a detective",
    "a widowed baker",
    "a group of students",
    "a traveling musician",
    "a nurse",
    "a con artist",
    "an old lighthouse keeper",
]
PLOTS = [
    "tries to save the family business",
    "returns home after twenty years",
    "searches for a missing sister",
    "gets caught up in a robbery",
    "falls in love during a long winter",
    "must survive a storm at sea",
    "uncovers a secret in an old house",
    "fights to win a local election",
    "travels across the country",
    "tries to solve a string of strange murders",
    "builds a new life in the city",
    "discovers a strange signal from space",
]
INTROS = [
    "I watched {title} last {when}.",
    "{title} is a {genre} directed by {person}.",
    "I rented {title} because a friend told me about it.",
    "{title} came out a few years ago and stars {person}.",
    "We saw {title} at the cinema on a rainy {when}.",
    "I had heard a lot about {title}, a {genre} with {person} in the lead.",
]
WHEN = ["weekend", "night", "Sunday", "Friday", "summer", "winter"]
PLOT_SENTENCES = [
    "The story follows {role} who {plot}.",
    "It is about {role} who {plot}.",
    "The plot centers on {role} who {plot}, with {person} in a supporting role.",
]
POSITIVE = [
    "The acting is superb and every scene feels alive.",
    "I loved the soundtrack, it stayed with me for days.",
    "The director does a wonderful job with the pacing.",
    "{person} gives a brilliant and moving performance.",
    "The photography is beautiful and the colors are gorgeous.",
    "It is funny, warm and full of heart.",
    "The script is clever and the dialogue is sharp.",
    "Every actor is perfectly cast.",
    "The ending moved me to tears in the best way.",
    "It is one of the most touching films I have seen in years.",
    "The story is gripping from start to finish.",
    "I was impressed by how well the characters are written.",
    "The humor works and the emotional scenes land perfectly.",
    "It is a delightful film that the whole family can enjoy.",
    "The music and the images fit together wonderfully.",
    "I enjoyed every minute of it.",
    "It is smart, beautiful and surprisingly deep.",
    "The chemistry between the leads is fantastic.",
    "This is a masterpiece of quiet storytelling.",
    "The tension builds beautifully and the payoff is great.",
]
NEGATIVE = [
    "The acting is wooden and nobody seems to care.",
    "The soundtrack is loud and annoying.",
    "The pacing is painfully slow and nothing happens.",
    "{person} gives a flat and lifeless performance.",
    "The photography is ugly and the colors look muddy.",
    "It is boring, cold and empty.",
    "The script is lazy and the dialogue is awful.",
    "Every actor seems miscast.",
    "The ending is stupid and makes no sense.",
    "It is one of the worst films I have seen in years.",
    "The story is dull from start to finish.",
    "I was annoyed by how badly the characters are written.",
    "The jokes fall flat and the emotional scenes feel fake.",
    "It is a tedious film that nobody should sit through.",
    "The music and the images never fit together.",
    "I regretted every minute of it.",
    "It is dumb, ugly and painfully shallow.",
    "There is no chemistry between the leads at all.",
    "This is a mess of terrible storytelling.",
    "The tension never builds and the payoff is a joke.",
]
POSITIVE_CLOSERS = [
    "Highly recommended.",
    "A true gem, 9/10.",
    "Go see it, you will not regret it.",
    "I will watch it again soon.",
    "One of my favorites, 10/10.",
    "A wonderful film.",
]
NEGATIVE_CLOSERS = [
    "Avoid this one.",
    "A waste of two hours, 2/10.",
    "Do not bother watching it.",
    "I will never watch it again.",
    "One of the worst, 1/10.",
    "A terrible film.",
]


def review(rng: random.Random, positive: bool) -> str:
    slots = {
        "title": rng.choice(TITLES),
        "genre": rng.choice(GENRES),
        "person": rng.choice(PEOPLE),
        "when": rng.choice(WHEN),
        "role": rng.choice(ROLES),
        "plot": rng.choice(PLOTS),
    }
    opinions = rng.sample(POSITIVE if positive else NEGATIVE, rng.randint(2, 4))
    sentences = [rng.choice(INTROS), rng.choice(PLOT_SENTENCES), *opinions]
    sentences.append(rng.choice(POSITIVE_CLOSERS if positive else NEGATIVE_CLOSERS))
    text = " ".join(s.format(**slots) for s in sentences)
    if rng.random() < 0.3:  # IMDB reviews keep the site's line breaks as HTML
        text = text.replace(". ", ".<br /><br />", 1)
    return text


def imdb_split(rng: random.Random, n: int) -> dict[str, list]:
    labels = [k % 2 for k in range(n)]
    rng.shuffle(labels)
    return {"text": [review(rng, bool(y)) for y in labels], "label": labels}


# --- TL;DR-style posts -----------------------------------------------------------------------------------------

# Each scenario: subreddit, title, post sentences and the faithful summary; {slots} are filled from `slots`.
SCENARIOS = [
    {
        "subreddit": "relationships",
        "title": "My ({age}{g}) partner ({page}{pg}) keeps {habit}, how do I bring it up?",
        "post": [
            "We have been together for {time} and live in a small apartment.",
            "Lately my partner keeps {habit} and it really bothers me.",
            "I tried to mention it once but they laughed it off.",
            "Everything else is great and I do not want to start a big fight.",
            "How do I talk about this without sounding like I am nagging?",
        ],
        "summary": "partner of {time} keeps {habit}; how do I bring it up without a fight?",
        "slots": {
            "habit": [
                "leaving dishes in the sink",
                "staying up gaming all night",
                "forgetting our plans",
                "checking their phone at dinner",
                "inviting friends over without asking",
            ],
            "time": ["two years", "eight months", "four years", "one year"],
        },
    },
    {
        "subreddit": "personalfinance",
        "title": "Should I pay off my {debt} or save for {goal} first?",
        "post": [
            "I am {age} and just started a job that pays about {salary} a year.",
            "I still owe around {amount} on my {debt}.",
            "I would also like to save for {goal} in the next few years.",
            "My parents say debt comes first but my friends say to save.",
            "What would you do in my place?",
        ],
        "summary": "{age}, earning {salary}, owe {amount} on {debt}; pay it off or save for {goal} first?",
        "slots": {
            "debt": ["student loan", "car loan", "credit card", "medical bill"],
            "goal": ["a house", "a wedding", "an emergency fund", "retirement"],
            "salary": ["40k", "55k", "70k", "90k"],
            "amount": ["5k", "12k", "20k", "3k"],
        },
    },
    {
        "subreddit": "dogs",
        "title": "My {breed} started {behavior}, any advice?",
        "post": [
            "I adopted a {breed} about {time} ago.",
            "Everything was fine until last week when he started {behavior}.",
            "Nothing at home has changed and the vet says he is healthy.",
            "I walk him twice a day and he gets plenty of toys.",
            "Has anyone dealt with this before?",
        ],
        "summary": "adopted {breed} {time} ago suddenly started {behavior}, vet says healthy; what can I do?",
        "slots": {
            "breed": ["beagle", "border collie", "labrador", "terrier mix", "greyhound"],
            "behavior": [
                "barking at night",
                "chewing the couch",
                "hiding under the bed",
                "pulling hard on the leash",
            ],
            "time": ["three months", "a year", "six weeks", "two years"],
        },
    },
    {
        "subreddit": "jobs",
        "title": "Got an offer from {company} but my manager offered a raise to stay",
        "post": [
            "I have worked as a {job} at my current company for {time}.",
            "Last week {company} offered me a new role with {raise} more pay.",
            "When I told my manager, she offered to match it if I stay.",
            "I like my team but the new role has more room to grow.",
            "Should I take the counter offer or leave?",
        ],
        "summary": "{job} for {time}, {company} offered {raise} more, manager will match; stay or leave?",
        "slots": {
            "company": ["a startup", "a big bank", "a hospital", "a game studio", "the city council"],
            "job": ["data analyst", "nurse", "designer", "sales rep", "software tester"],
            "raise": ["ten percent", "twenty percent", "15k", "a third"],
            "time": ["three years", "eighteen months", "five years"],
        },
    },
    {
        "subreddit": "roommates",
        "title": "Roommate {problem} and refuses to talk about it",
        "post": [
            "I share a flat with one roommate and we signed the lease for {time}.",
            "For the past month my roommate {problem}.",
            "I left a polite note and then asked in person, but nothing changed.",
            "The landlord says it is our problem to sort out.",
            "Is there anything I can do before the lease ends?",
        ],
        "summary": "roommate {problem} for a month, notes and talks failed; what can I do before the {time} lease ends?",
        "slots": {
            "problem": [
                "never pays the power bill on time",
                "plays loud music after midnight",
                "eats my food",
                "has a partner staying over every night",
                "leaves trash in the hall",
            ],
            "time": ["a year", "six months", "two years"],
        },
    },
    {
        "subreddit": "Cooking",
        "title": "Why does my {dish} always turn out {fault}?",
        "post": [
            "I have been trying to make {dish} for {time} now.",
            "I follow the recipe exactly but it always comes out {fault}.",
            "I use a {tool} and fresh ingredients from the market.",
            "My friends say it tastes fine but I know it could be better.",
            "What am I doing wrong?",
        ],
        "summary": "my {dish} always comes out {fault} even following the recipe with a {tool}; what am I doing wrong?",
        "slots": {
            "dish": ["bread", "risotto", "pancakes", "curry", "pizza dough"],
            "fault": ["too dense", "watery", "burnt on the bottom", "bland"],
            "tool": ["gas stove", "cheap oven", "cast iron pan", "stand mixer"],
            "time": ["a month", "a few weeks", "half a year"],
        },
    },
    {
        "subreddit": "running",
        "title": "Training for my first {race}, {pain} after long runs",
        "post": [
            "I am training for my first {race} in {time}.",
            "My long runs are going well but afterwards I get {pain}.",
            "I stretch before and after and my shoes are new.",
            "I do not want to get injured before the race.",
            "Should I rest or keep going with the plan?",
        ],
        "summary": "first {race} in {time}, {pain} after long runs despite stretching; rest or keep training?",
        "slots": {
            "race": ["marathon", "half marathon", "10k", "trail race"],
            "pain": ["knee pain", "sore shins", "a tight calf", "hip pain"],
            "time": ["two months", "six weeks", "three months"],
        },
    },
    {
        "subreddit": "college",
        "title": "Failing {course} in my {year} year, should I drop it?",
        "post": [
            "I am in my {year} year studying {major}.",
            "This term I am failing {course} even though I go to every lecture.",
            "The deadline to drop the course is {time} away.",
            "Dropping it would delay my graduation by one term.",
            "Is it better to drop it or try to pass?",
        ],
        "summary": "{year} year {major} student failing {course}, drop deadline in {time}; drop it or try to pass?",
        "slots": {
            "course": ["statistics", "organic chemistry", "calculus", "accounting"],
            "year": ["second", "third", "final"],
            "major": ["biology", "economics", "engineering", "history"],
            "time": ["one week", "two weeks", "three days"],
        },
    },
    {
        "subreddit": "gardening",
        "title": "My {plant} leaves are turning {color}",
        "post": [
            "I planted {plant} in my {place} this spring.",
            "This week the leaves started turning {color}.",
            "I water them every {water} and they get sun in the morning.",
            "The other plants next to them look fine.",
            "What could be causing this?",
        ],
        "summary": "{plant} in my {place} turning {color} though watered every {water}; what is the cause?",
        "slots": {
            "plant": ["tomato", "basil", "rose", "pepper", "lemon tree"],
            "color": ["yellow", "brown", "white at the edges", "black"],
            "place": ["backyard", "balcony", "greenhouse"],
            "water": ["day", "two days", "week"],
        },
    },
    {
        "subreddit": "legaladvice",
        "title": "Landlord keeping my {deposit} deposit for {reason}",
        "post": [
            "I moved out of my apartment {time} ago and left it clean.",
            "My landlord now says he will keep the whole {deposit} deposit for {reason}.",
            "I have photos from the day I moved out that show no damage.",
            "He has stopped answering my emails.",
            "What are my options to get the money back?",
        ],
        "summary": "landlord keeping my {deposit} deposit for {reason}, I have move-out photos; how do I get it back?",
        "slots": {
            "deposit": ["1,200 dollar", "800 dollar", "two month", "2,000 dollar"],
            "reason": ["carpet cleaning", "a broken blind", "painting the walls", "a late rent payment"],
            "time": ["a month", "six weeks", "two months"],
        },
    },
]
AGES = ["19", "22", "24", "27", "29", "31", "35", "41"]
GENDERS = ["M", "F"]
VAGUE = [
    " need some advice about my situation, what should I do?",
    " long story, please read the post.",
    " things are complicated and I am not sure what to do.",
    " help me please, I do not know.",
]


def fill(text: str, slots: dict[str, str]) -> str:
    return text.format(**slots)


def post(rng: random.Random, index: int) -> dict:
    sc = SCENARIOS[index % len(SCENARIOS)]
    slots = {k: rng.choice(v) for k, v in sc["slots"].items()}
    slots.update(age=rng.choice(AGES), g=rng.choice(GENDERS), page=rng.choice(AGES), pg=rng.choice(GENDERS))
    sentences = [fill(s, slots) for s in sc["post"]]
    if rng.random() < 0.5:  # shuffle the middle sentences so posts are not all alike
        middle = sentences[1:-1]
        rng.shuffle(middle)
        sentences = [sentences[0], *middle, sentences[-1]]
    body = " ".join(sentences)
    prompt = f"SUBREDDIT: r/{sc['subreddit']}\n\nTITLE: {fill(sc['title'], slots)}\n\nPOST: {body}\n\nTL;DR:"
    return {"scenario": sc, "slots": slots, "prompt": prompt, "summary": " " + fill(sc["summary"], slots)}


def rejected_summary(rng: random.Random, item: dict, others: list[dict]) -> str:
    """A worse summary of the same post: a wrong fact, a vague line, a degenerate repeat or another post's."""
    sc, slots = item["scenario"], item["slots"]
    kind = rng.choice(["wrong_fact", "vague", "repeat", "other_post"])
    if kind == "wrong_fact":
        key = rng.choice(sorted(sc["slots"]))
        wrong = [v for v in sc["slots"][key] if v != slots[key]]
        return " " + fill(sc["summary"], {**slots, key: rng.choice(wrong)})
    if kind == "vague":
        return rng.choice(VAGUE)
    if kind == "repeat":
        words = item["summary"].split()
        cut = words[: max(3, len(words) // 2)]
        return " " + " ".join(cut + cut[-2:] * 3)
    other = rng.choice([o for o in others if o["scenario"] is not sc])
    return other["summary"]


def tldr_splits(rng: random.Random, sizes: dict[str, int]) -> dict[str, list[dict]]:
    index = 0
    out = {}
    for split, n in sizes.items():
        out[split] = [post(rng, index + k) for k in range(n)]
        index += n
    return out


def preference_rows(rng: random.Random, posts: list[dict], per_post: int) -> dict[str, list]:
    rows: dict[str, list] = {"prompt": [], "chosen": [], "rejected": []}
    for item in posts:
        for _ in range(per_post):
            rows["prompt"].append(item["prompt"])
            rows["chosen"].append(item["summary"])
            rows["rejected"].append(rejected_summary(rng, item, posts))
    return rows


def write_parquet(path: Path, columns: dict[str, list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(columns)
    pq.write_table(table, path)
    print(f"wrote {path.relative_to(ROOT.parent)} ({table.num_rows} rows)")


def main() -> None:
    rng = random.Random(15)
    imdb = ROOT / "imdb" / "plain_text"
    write_parquet(imdb / "train-00000-of-00001.parquet", imdb_split(rng, 320))
    write_parquet(imdb / "test-00000-of-00001.parquet", imdb_split(rng, 120))

    posts = tldr_splits(rng, {"train": 300, "validation": 60, "test": 60})
    for split, items in posts.items():
        write_parquet(
            ROOT / "tldr" / "sft" / "data" / f"{split}-00000-of-00001.parquet",
            {"prompt": [p["prompt"] for p in items], "completion": [p["summary"] for p in items]},
        )
    for split, per_post in (("train", 2), ("validation", 1)):
        write_parquet(
            ROOT / "tldr" / "preference" / "data" / f"{split}-00000-of-00001.parquet",
            preference_rows(rng, posts[split], per_post),
        )


if __name__ == "__main__":
    main()
