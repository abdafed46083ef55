import { graphql } from "relay-runtime";

export const query = graphql`
  query MeQuery {
    me {
      id
      firstName
    }
  }
`;
