/** The web app's entry: renders the App into <body>. */
import { h, render } from 'preact';
import { App } from './app.ts';

render(h(App, null), document.getElementById('app')!);
