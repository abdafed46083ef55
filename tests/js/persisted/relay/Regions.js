// Relay's compiler reads these (tests/test_persisted_clients.py): each operation is named
// after its module, as Relay requires.
import { graphql } from "relay-runtime";

export const query = graphql`
  query RegionsQuery {
    regions {
      code
      name
    }
  }
`;
