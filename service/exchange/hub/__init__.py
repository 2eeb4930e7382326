"""A neutral third-party hub for the exchange: members publish to it, subscribers read one merged feed.

Platforms may not want to hand each other their data directly (data protection, competition). A hub run
by a neutral party — a trade association, a regulator — sits between them:

* **Members** (platforms, brands) are registered by the hub's operator with their Ed25519 public key and
  what they may publish: entry types (``pdq``, ``seller``) and brand scopes (``*`` for any). A member may
  publish **anonymously**: subscribers then see only how many anonymous members reported an entry.
* Members **publish** their own signed feed pages (``counterfeit exchange push``), or the hub **pulls**
  them from the member's feed (``counterfeit hub pull``). Either way the hub checks the page like a peer
  does (the member's signature, its cursor — a replayed or skipped page is refused whole —, freshness) and
  each entry's own signature, then its membership policy: an entry of a type or brand the member may not
  publish is refused and counted.
* The hub serves **one merged feed**, signed with the hub's key and resumable from a cursor, in the
  exchange's own format: subscribers configure the hub as one exchange peer. An entry several members
  reported is one entry naming them (``reported_by``) or counting them (``anonymous_reports``).
* It never holds the consortium key: seller entries are keyed digests it relays but cannot invert.
* A member's withdrawal withdraws its report (the merged entry goes when nobody reports it any more);
  **revoking** a member withdraws everything it reported and refuses its pages from then on.
* Per member: entries published (live), entries other members reported too ("matched by others"), pages
  and entries refused.
"""
