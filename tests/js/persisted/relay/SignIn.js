import { graphql } from "relay-runtime";

export const mutation = graphql`
  mutation SignInMutation($input: SignInInput!) {
    signIn(input: $input) {
      token
      userErrors {
        code
      }
    }
  }
`;
