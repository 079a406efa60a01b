"""The generated-client round trip (issue 12): a Python client generated from the served OpenAPI
document lists synergies, creates an actor and a resource with a facilitator key, and reads them
back. Run by scripts/client_roundtrip.sh with the generated package on PYTHONPATH; exits non-zero
on the first wrong answer.
"""

import os
import sys

from symbiose_client import AuthenticatedClient
from symbiose_client.api.actors import create_actor, get_actor
from symbiose_client.api.resources import create_resource, get_resource
from symbiose_client.api.synergies import list_synergies
from symbiose_client.models import ActorInput, ResourceInput, SynergyKind


def expect(response, status, what):
    if response.status_code != status:
        sys.exit(f"{what}: HTTP {int(response.status_code)} (expected {status}): {response.content[:500]!r}")
    if response.parsed is None:
        sys.exit(f"{what}: the client could not parse the answer: {response.content[:500]!r}")
    return response.parsed


def main():
    client = AuthenticatedClient(base_url=os.environ["BASE_URL"], token=os.environ["KEY"], timeout=30.0)
    with client:
        page = expect(
            list_synergies.sync_detailed(client=client, territory="21", kind=SynergyKind.SUBSTITUTION, limit=5),
            200,
            "list synergies",
        )
        if not page.items:
            sys.exit("list synergies: no synergy in département 21 of the demo")
        print(f"synergies: {len(page.items)} on the first page, next cursor {'yes' if page.next_cursor else 'no'}")
        if page.next_cursor:
            expect(
                list_synergies.sync_detailed(client=client, territory="21", kind=SynergyKind.SUBSTITUTION,
                                             limit=5, cursor=page.next_cursor),
                200,
                "second page",
            )

        actor = expect(
            create_actor.sync_detailed(client=client, body=ActorInput.from_dict({
                "name": "Scierie du client généré",
                "naf_code": "16.10A",
                "commune_insee": "21231",
                "share_with_partners": True,
            })),
            201,
            "create actor",
        )
        resource = expect(
            create_resource.sync_detailed(actor.id, client=client, body=ResourceInput.from_dict({
                "kind": "offer",
                "category": "material",
                "label": "Sciures",
                "ewc_code": "03 01 05",
                "quantity": {"value": 40, "unit": "t", "period": "month"},
            })),
            201,
            "create resource",
        )

        again = expect(get_actor.sync_detailed(str(actor.id), client=client), 200, "read actor")
        if again.name != "Scierie du client généré" or str(again.id) != str(actor.id):
            sys.exit(f"read actor: {again!r}")
        stored = expect(get_resource.sync_detailed(str(resource.id), client=client), 200, "read resource")
        if stored.label != "Sciures" or str(stored.actor_id) != str(actor.id):
            sys.exit(f"read resource: {stored!r}")
        print(f"actor {actor.id} and resource {resource.id} created and read back")


if __name__ == "__main__":
    main()
