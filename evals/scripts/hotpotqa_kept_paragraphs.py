"""Which of HotpotQA's two supporting paragraphs a compressed text kept, and
how accuracy depends on it.

Reads the records of `folio bench compress --suite hotpotqa` (each holds the
text the model read) and the HotpotQA dev file folio fetched, and prints one
markdown row per method and ratio. A supporting fact counts as kept when at
least 80 % of its sentence's words occur in the text read (the fine stage may
drop a few). The "answer paragraph" is the supporting paragraph whose text
holds the gold answer (yes/no questions are left out of those columns); the
other one is, in bridge questions, the paragraph the question names (the
first hop).

    python3 evals/scripts/hotpotqa_kept_paragraphs.py \
        evals/reports/compress-hotpotqa.jsonl $FOLIO_HOME/data/hotpotqa.json
"""
import collections
import json
import re
import sys


def words(text):
    return re.findall(r"\w+", text.lower())


def contains(text, phrase):
    return f" {' '.join(words(phrase))} " in f" {' '.join(words(text))} "


def kept_facts(question, read):
    """(title, sentence index) of the sentences the text read still holds."""
    present = set(words(read))
    kept = set()
    for title, sentences in question["context"]:
        for i, sentence in enumerate(sentences):
            w = words(sentence)
            if w and sum(x in present for x in w) / len(w) >= 0.8:
                kept.add((title, i))
    return kept


def main(records_path, dev_path):
    records = {}
    for line in open(records_path):
        r = json.loads(line)
        records[(r["id"], r["method"], r["ratio"])] = r
    ids = {key[0] for key in records}
    dev = {q["_id"]: q for q in json.load(open(dev_path)) if q["_id"] in ids}
    print("| method | ratio | n | accuracy % | both supporting paragraphs kept % "
          "| accuracy when both kept % | when not % | answer paragraph kept % "
          "| other supporting paragraph kept % | answer lost, other kept |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for method in ["llmlingua", "random", "truncate"]:
        for ratio in [2.0, 4.0, 8.0]:
            s = collections.Counter()
            for qid, q in dev.items():
                r = records.get((qid, method, ratio))
                if r is None or r.get("error"):
                    continue
                kept = kept_facts(q, r.get("read") or "")
                facts = collections.defaultdict(set)
                for title, i in q["supporting_facts"]:
                    facts[title].add(i)
                whole = {t: all((t, i) in kept for i in ix) for t, ix in facts.items()}
                both = all(whole.values())
                s["n"] += 1
                s["correct"] += r["correct"]
                s["both"] += both
                s["correct both"] += r["correct"] and both
                s["correct not both"] += r["correct"] and not both
                context = dict((t, " ".join(x)) for t, x in q["context"])
                holds = [t for t in facts if contains(context.get(t, ""), q["answer"])]
                if q["answer"].lower() in ("yes", "no") or not holds:
                    continue
                answer_kept = any(whole[t] for t in holds)
                hop_kept = all(whole[t] for t in facts if t not in holds)
                s["m"] += 1
                s["answer kept"] += answer_kept
                s["hop kept"] += hop_kept
                s["answer lost hop kept"] += (not answer_kept) and hop_kept
            n, m = s["n"], s["m"]
            pct = lambda a, b: f"{100 * a / b:.1f}" if b else "-"
            print(f"| {method} | {ratio:g}× | {n} | {pct(s['correct'], n)} | {pct(s['both'], n)} "
                  f"| {pct(s['correct both'], s['both'])} | {pct(s['correct not both'], n - s['both'])} "
                  f"| {pct(s['answer kept'], m)} | {pct(s['hop kept'], m)} | {s['answer lost hop kept']} of {m} |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
