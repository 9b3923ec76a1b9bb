import { useState, type FormEvent } from 'react';
import { useMutation } from 'urql';
import { errorMessage } from './api';
import { graphql } from './gql';

const Login = graphql(`
  mutation Login($email: String!, $password: String!) {
    login(email: $email, password: $password) { token }
  }
`);

export function SignIn({ onSignedIn }: { onSignedIn: (token: string) => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [result, login] = useMutation(Login);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const { data } = await login({ email, password });
    if (data) onSignedIn(data.login.token);
  };
  return (
    <form className="sign-in" onSubmit={submit}>
      <h1>Sign in</h1>
      <label>Email <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} required /></label>
      <label>
        Password <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} required />
      </label>
      <button type="submit" disabled={result.fetching}>Sign in</button>
      {result.error && <p role="alert">{errorMessage(result.error)}</p>}
    </form>
  );
}
